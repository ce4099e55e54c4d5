"""The identity loss and reference inputs: pure tensor maths (faces.identity_loss, faces.references)."""

import pytest
import torch
from conftest import JUDGES

from idglow.cast.crops import face_crops
from idglow.cast.judge_training import load_judges
from idglow.faces.identity_loss import (annealing, gaussian_blur, identity_loss_weight, jitter_boxes, per_sample_mean,
                                       subject_similarity)
from idglow.faces.references import scatter_references
from idglow.identity.schedules import ScheduleConfig, schedule_function


def test_subject_similarity_is_the_cosine_of_cropped_faces_and_only_box_pixels_get_gradient():
    torch.manual_seed(0)
    embedder = load_judges(JUDGES)["encoder"]
    images = (torch.rand(2, 3, 64, 128) * 2 - 1).requires_grad_(True)
    boxes = torch.tensor([[10.0, 10, 30, 34], [60, 8, 80, 30], [90, 20, 110, 44]])
    rows = torch.tensor([0, 0, 1])
    refs = torch.nn.functional.normalize(torch.randn(3, 128), dim=-1)
    sim = subject_similarity(images, boxes, rows, refs, embedder)
    with torch.no_grad():
        expected = (embedder(face_crops(images, boxes, rows)) * refs).sum(-1)
    torch.testing.assert_close(sim, expected)
    sim.sum().backward()
    grad = images.grad.abs().sum(1)
    assert grad[0, 10:34, 8:32].sum() > 0 and grad[1, 20:44, 88:112].sum() > 0
    assert grad[0, 50:, :].sum() == 0 and grad[1, :, :80].sum() == 0  # nothing outside the (expanded) boxes


def test_views_without_jitter_or_blur_are_the_plain_crop_and_jittered_views_stay_in_range():
    torch.manual_seed(0)
    embedder = load_judges(JUDGES)["encoder"]
    images = torch.rand(2, 3, 64, 128) * 2 - 1
    boxes = torch.tensor([[10.0, 10, 30, 34], [60, 8, 80, 30], [90, 20, 110, 44]])
    rows = torch.tensor([0, 0, 1])
    refs = torch.nn.functional.normalize(torch.randn(2, 3, 128), dim=-1)
    with torch.no_grad():
        plain = subject_similarity(images, boxes, rows, refs, embedder)
        torch.testing.assert_close(subject_similarity(images, boxes, rows, refs, embedder, views=3), plain)
        jittered = subject_similarity(images, boxes, rows, refs, embedder, 3, 0.1, 0.1, 0.0,
                                      torch.Generator().manual_seed(1))
        again = subject_similarity(images, boxes, rows, refs, embedder, 3, 0.1, 0.1, 0.0,
                                   torch.Generator().manual_seed(1))
    assert jittered.shape == (2, 3) and torch.equal(jittered, again) and not torch.allclose(jittered, plain)
    views = jitter_boxes(boxes, 50, 0.1, 0.2, torch.Generator().manual_seed(2)).view(50, 3, 4)
    size, centre = views[..., 2:] - views[..., :2], (views[..., 2:] + views[..., :2]) / 2
    true_size, true_centre = boxes[:, 2:] - boxes[:, :2], (boxes[:, 2:] + boxes[:, :2]) / 2
    ratio = size / true_size
    assert torch.allclose(ratio[..., 0], ratio[..., 1]) and ratio.min() >= 0.8 - 1e-5 and ratio.max() <= 1.2 + 1e-5
    assert ((centre - true_centre).abs() <= 0.1 * true_size.max(-1, keepdim=True).values + 1e-4).all()
    assert ratio.std() > 0.05  # the draws do spread over the range
    with pytest.raises(ValueError, match="views: must be >= 1"):
        subject_similarity(images, boxes, rows, refs, embedder, views=0)


def test_blur_keeps_smooth_images_and_removes_speckle_from_the_loss():
    """A checkerboard at the pixel level (speckle) barely moves a blurred crop's similarity; it moves a sharp one."""
    flat = torch.full((1, 3, 16, 16), 0.3)
    torch.testing.assert_close(gaussian_blur(flat, 1.0), flat)
    assert gaussian_blur(flat, 0.0) is flat
    yy, xx = torch.meshgrid(torch.arange(64), torch.arange(128), indexing="ij")
    speckle = 0.15 * ((xx + yy) % 2 * 2 - 1).float().expand(1, 3, 64, 128)
    assert gaussian_blur(speckle[..., :32, :32], 1.0).abs().max() < 0.01 * 0.15
    torch.manual_seed(0)
    embedder = load_judges(JUDGES)["encoder"]
    images = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 64, 128) * 2 - 1, 9, 1, 4)  # a smooth image
    boxes, rows = torch.tensor([[20.0, 10, 44, 40]]), torch.tensor([0])
    refs = torch.nn.functional.normalize(torch.randn(1, 128), dim=-1)
    with torch.no_grad():
        moved = {blur: (subject_similarity(images + speckle, boxes, rows, refs, embedder, blur=blur)
                        - subject_similarity(images, boxes, rows, refs, embedder, blur=blur)).abs().item()
                 for blur in (0.0, 1.0)}
    assert moved[1.0] < 0.2 * moved[0.0], moved


def test_per_sample_mean_weight_and_annealing():
    values, rows = torch.tensor([1.0, 3.0, 5.0]), torch.tensor([0, 0, 2])
    torch.testing.assert_close(per_sample_mean(values, rows, 3), torch.tensor([2.0, 0.0, 5.0]))
    schedules = [schedule_function(ScheduleConfig(kind="linear_decay")),
                 schedule_function(ScheduleConfig(kind="window", sigma_lo=0.3, sigma_hi=0.7, edge_width=0.0))]
    sigma, task = torch.tensor([0.2, 0.2, 0.5, 0.9]), torch.tensor([0, 1, 1, 1])
    torch.testing.assert_close(identity_loss_weight(sigma, task, schedules, 0.5, 0.5), torch.tensor([0.05, 0.0, 0.25, 0.0]))
    assert annealing(5, "none", 10) == 1.0 and annealing(5, "warmup", 10) == 0.5 and annealing(20, "warmup", 10) == 1.0
    assert annealing(2, "decay", 10) == pytest.approx(0.8) and annealing(0, "warmup", 0) == 1.0
    with pytest.raises(ValueError, match="anneal"):
        annealing(1, "cosine", 10)


def test_scatter_references_pads_and_rejects_too_many():
    values = torch.arange(5.0)[:, None].repeat(1, 2)
    refs, mask = scatter_references(values, torch.tensor([0, 0, 0, 2, 2]), torch.tensor([0, 1, 2, 0, 1]), 3, 4)
    assert refs.shape == (3, 3, 2) and mask.tolist() == [[True] * 3, [False] * 3, [True, True, False]]
    assert refs[2, 1, 0] == 4 and refs[1].abs().sum() == 0
    with pytest.raises(ValueError, match="at most 2"):
        scatter_references(values, torch.zeros(5, dtype=torch.long), torch.arange(5), 1, 2)


def test_reference_inputs_follow_the_embedder_device():
    """Crops read on the CPU are embedded where the embedder lives, and scattered on the values' device (on a GPU
    run the recognizer sits on CUDA; the meta device stands in for it here)."""
    from idglow.faces.references import frozen_embeddings

    class Embedder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(3 * 4 * 4, 8)

        def forward(self, crops):
            return self.head(crops.flatten(1))

    embedder = Embedder().to("meta")
    embedded = frozen_embeddings(embedder, torch.rand(5, 3, 4, 4), batch=2)
    assert embedded.device.type == "meta" and embedded.shape == (5, 8)
    refs, mask = scatter_references(embedded, torch.tensor([0, 0, 1, 1, 1]), torch.tensor([0, 1, 0, 1, 2]), 2, 4)
    assert refs.device.type == mask.device.type == "meta" and refs.shape == (2, 3, 8)


def test_embedder_ensemble_cosine_is_the_mean_of_its_members_and_its_primary_embeds_references():
    """The joined embedding is a unit vector whose cosine is the mean of the members' cosines (so ``1 - cos`` of the
    loss is the mean of each member's), and gradients reach the crops through every member."""
    from idglow.cast.judges import IdentityEmbedder
    from idglow.faces.recognizer import EmbedderEnsemble

    torch.manual_seed(0)
    members = [IdentityEmbedder("resnet").eval(), IdentityEmbedder("spatial").eval()]
    ensemble = EmbedderEnsemble(members)
    a, b = torch.rand(3, 3, 32, 32) * 2 - 1, torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        joined_a, joined_b = ensemble(a), ensemble(b)
        expected = torch.stack([(m(a) * m(b)).sum(-1) for m in members]).mean(0)
    torch.testing.assert_close(joined_a.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close((joined_a * joined_b).sum(-1), expected)
    assert joined_a.shape == (3, 256) and ensemble.head.out_features == 256 and ensemble.primary is members[0]
    crops = a.clone().requires_grad_(True)
    (ensemble(crops)[:, 128:] * joined_b[:, 128:]).sum().backward()  # the spatial member's half alone
    assert crops.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="at least one member"):
        EmbedderEnsemble([])


def test_embedder_ensemble_weights_its_members_and_a_zero_weight_primary_only_embeds_references():
    """Weights make the cosine a weighted mean; a member of weight 0 is left out of the joined embedding, yet stays
    ``primary`` (what embeds the references); bad weights are refused."""
    from idglow.cast.judges import IdentityEmbedder
    from idglow.faces.recognizer import EmbedderEnsemble

    torch.manual_seed(0)
    members = [IdentityEmbedder("resnet").eval(), IdentityEmbedder("spatial").eval(), IdentityEmbedder("plain").eval()]
    a, b = torch.rand(3, 3, 32, 32) * 2 - 1, torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        cosines = torch.stack([(m(a) * m(b)).sum(-1) for m in members])
        weighted = EmbedderEnsemble(members, [2.0, 1.0, 1.0])
        torch.testing.assert_close((weighted(a) * weighted(b)).sum(-1), (cosines * torch.tensor([[0.5], [0.25], [0.25]])).sum(0))
        without_primary = EmbedderEnsemble(members, [0.0, 1.0, 1.0])
        joined = without_primary(a)
        torch.testing.assert_close((joined * without_primary(b)).sum(-1), cosines[1:].mean(0))
    assert joined.shape == (3, 256) and without_primary.head.out_features == 256
    assert without_primary.primary is members[0]
    for bad in ([1.0], [0.0, 0.0, 0.0], [1.0, -1.0, 1.0]):
        with pytest.raises(ValueError, match="one non-negative weight per member"):
            EmbedderEnsemble(members, bad)
