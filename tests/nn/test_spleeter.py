"""aisinger.nn.spleeter: the U-Net mask (shapes, range, size check)."""

from __future__ import annotations

import pytest
import torch

from aisinger.nn.spleeter import SpleeterUNet


def test_mask_shape_and_range():
    torch.manual_seed(0)
    mask = SpleeterUNet().eval()(torch.rand(1, 2, 64, 128))
    assert mask.shape == (1, 2, 64, 128) and (mask >= 0).all() and (mask <= 1).all()


def test_size_must_be_a_multiple_of_64():
    with pytest.raises(ValueError, match="multiples of 64"):
        SpleeterUNet()(torch.rand(1, 2, 60, 64))
