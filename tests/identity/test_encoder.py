"""Identity encoders: the feature-map resampler against the plain one, and the embedder that feeds it."""

import pytest
import torch

from idglow.cast.judge_training import load_embedder
from idglow.identity.encoder import EmbeddingMapResampler, EmbeddingResampler


def _pair(embedding_dim: int = 16, map_dim: int = 4) -> tuple[EmbeddingResampler, EmbeddingMapResampler]:
    torch.manual_seed(0)
    plain = EmbeddingResampler(embedding_dim, num_tokens=2, token_dim=8)
    grown = EmbeddingMapResampler(embedding_dim, map_dim, num_tokens=2, token_dim=8)
    missing = set(grown.state_dict()) - set(plain.state_dict())
    unexpected = set(plain.state_dict()) - set(grown.state_dict())
    assert not unexpected and missing and all(k.startswith("map_") for k in missing)
    grown.load_state_dict({**{k: v for k, v in grown.state_dict().items() if k in missing}, **plain.state_dict()})
    return plain, grown


def test_the_feature_map_path_starts_at_zero_so_a_plain_resamplers_weights_give_its_tokens():
    plain, grown = _pair()
    refs = torch.randn(5, 16 + 16 * 4)
    assert grown.reference_shape() == (16 + 16 * 4,)
    torch.testing.assert_close(grown(refs), plain(refs[:, :16]), rtol=0, atol=0)


def test_once_trained_the_tokens_read_where_each_feature_lies_in_the_map():
    _, grown = _pair()
    torch.nn.init.normal_(grown.map_out.weight)
    pooled, grid = torch.randn(3, 16), torch.randn(3, 16, 4)
    moved = grid.roll(1, dims=1)  # the same features, each in the next cell
    tokens = [grown(torch.cat([pooled, g.flatten(1)], dim=-1)) for g in (grid, moved)]
    assert (tokens[0] - tokens[1]).abs().max() > 1e-3


def test_feature_map_embedder_gives_the_encoders_embedding_then_its_4x4_map_position_major():
    from idglow.faces.recognizer import FeatureMapEmbedder

    encoder = load_embedder("assets/judges", "encoder").eval()
    crops = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        rows = FeatureMapEmbedder(encoder).eval()(crops)
        features = encoder.feature_map(crops)
    assert features.shape == (3, 128, 4, 4) and rows.shape == (3, 128 + 16 * 128)
    torch.testing.assert_close(rows[:, :128], encoder(crops))
    torch.testing.assert_close(rows[:, 128:].view(3, 16, 128)[:, 5], features[:, :, 1, 1])  # cell 5: row 1, column 1


def test_feature_map_rows_of_the_wrong_width_are_named():
    _, grown = _pair()
    with pytest.raises(ValueError, match=r"EmbeddingMapResampler expects \[B, N, 80\], got \(1, 2, 16\)"):
        grown.check_references(torch.zeros(1, 2, 16))
