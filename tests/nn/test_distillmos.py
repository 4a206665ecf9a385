"""nn/distillmos.py: shapes, output range and segmenting of the DistillMOS module (random
weights; the pretrained weights and their agreement with the package: tests/lab and docs/lab.md)."""

from __future__ import annotations

import torch

from aisinger.nn.distillmos import SEGMENT, DistillMOS, compressed_spectrum


def test_spectrum_and_score_shapes():
    torch.manual_seed(0)
    model = DistillMOS().eval()
    x = 0.1 * torch.randn(2, SEGMENT)
    spec = compressed_spectrum(x)
    assert spec.shape == (2, 2, 161, SEGMENT // 160)  # reflect pad 80 each side, no centring
    with torch.no_grad():
        seg = model.score_segments(x)
        full = model(x)
        short = model(x[:, :16000])  # zero-padded to one segment
        long = model(torch.cat([x, x], dim=1))  # several overlapping segments, averaged
    assert seg.shape == full.shape == short.shape == long.shape == (2,)
    assert torch.allclose(seg, full)
    for y in (seg, short, long):
        assert torch.all((y >= 1) & (y <= 5))
    # the module's parameter names are those of the published state dict
    names = set(model.state_dict())
    assert "transformer_pool_attn.transformer.position_encoding.pe" in names
    assert "cnn.cnn.10.weight" in names and "transformer_pool_attn.pool.linear3.bias" in names
