"""Sampling precision: auto picks bf16 only where the hardware makes it fast, fp32 attention inside bf16 is exact fp32."""

import logging

import pytest
import torch
import torch.nn.functional as F

from idglow.utils import precision as prec


def test_auto_is_bf16_only_with_fast_bf16_and_says_when_it_falls_back(monkeypatch, caplog):
    monkeypatch.setattr(prec, "_cpu_has_fast_bf16", lambda: True)
    assert prec.resolve_precision("auto", "cpu") == "bf16"
    monkeypatch.setattr(prec, "_cpu_has_fast_bf16", lambda: False)
    monkeypatch.setattr(prec, "_said", set())
    with caplog.at_level(logging.WARNING, logger="idglow.utils.precision"):
        assert prec.resolve_precision("auto", "cpu") == "fp32"
        assert prec.resolve_precision("auto", "cpu") == "fp32"
    assert [r.getMessage() for r in caplog.records].count(
        "precision auto: no fast bf16 on cpu (needs AVX512-BF16, AMX or a bf16 GPU); sampling in fp32") == 1
    assert prec.resolve_precision("bf16", "cpu") == "bf16" and prec.resolve_precision("fp32", "cpu") == "fp32"


def test_the_process_default_comes_from_the_environment_and_bad_values_are_named(monkeypatch):
    monkeypatch.setenv("IDGLOW_PRECISION", "fp32")
    assert prec.resolve_precision(None, "cpu") == "fp32"
    monkeypatch.setenv("IDGLOW_PRECISION", "half")
    with pytest.raises(ValueError, match="IDGLOW_PRECISION: unknown 'half'"):
        prec.resolve_precision(None, "cpu")
    with pytest.raises(ValueError, match="precision: unknown 'fp16'"):
        prec.resolve_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="expected a resolved"):
        with prec.autocast("auto", "cpu"):
            pass


def test_bf16_autocast_runs_matmuls_in_bf16_and_fp32_runs_them_in_fp32():
    layer = torch.nn.Linear(8, 8)
    x = torch.randn(2, 8)
    with prec.autocast("bf16", "cpu"):
        assert layer(x).dtype == torch.bfloat16
    with prec.autocast("fp32", "cpu"):
        assert layer(x).dtype == torch.float32


def test_fp32_attention_inside_bf16_is_the_fp32_kernel_on_the_same_inputs():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 40, 16, generator=g).bfloat16() for _ in range(3))
    reference = F.scaled_dot_product_attention(q.float(), k.float(), v.float()).bfloat16()
    with prec.autocast("bf16", "cpu", attention_fp32=True):
        kept = F.scaled_dot_product_attention(query=q, key=k, value=v)  # keywords, as diffusers calls it
        other = torch.matmul(q, k.transpose(-1, -2))
    assert kept.dtype == torch.bfloat16 and torch.equal(kept, reference)
    assert other.dtype == torch.bfloat16  # only attention leaves bf16
    with prec.autocast("bf16", "cpu"):
        plain = F.scaled_dot_product_attention(q, k, v)
    assert not torch.equal(plain, reference)  # the bf16 kernel rounds differently: the mode is what made them equal


def test_fp32_attention_in_training_needs_bf16_autocast():
    from idglow.recipes.train import OptimConfig

    with pytest.raises(ValueError, match="attention_fp32: only means something with mixed_precision: bf16"):
        OptimConfig(attention_fp32=True).validate()
    OptimConfig(attention_fp32=True, mixed_precision="bf16").validate()
