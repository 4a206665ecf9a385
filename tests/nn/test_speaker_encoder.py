"""aisinger.nn.speaker_encoder: shapes, unit norm, a known output."""

from __future__ import annotations

import torch

from aisinger.nn.speaker_encoder import EMBEDDING_SIZE, N_MELS, SpeakerEncoder


def test_shapes_and_unit_norm():
    torch.manual_seed(0)
    emb = SpeakerEncoder()(torch.rand(3, 160, N_MELS))
    assert emb.shape == (3, EMBEDDING_SIZE)
    assert torch.allclose(emb.norm(dim=1), torch.ones(3), atol=1e-5)
    assert (emb >= 0).all()


def test_known_output_from_the_bias():
    """With zero output weights the embedding is the normalised ReLU of the bias."""
    model = SpeakerEncoder()
    with torch.no_grad():
        model.linear.weight.zero_()
        model.linear.bias.zero_()
        model.linear.bias[[3, 7]] = torch.tensor([3.0, 4.0])
        model.linear.bias[0] = -1.0  # clipped by the ReLU
    emb = model(torch.rand(2, 50, N_MELS))
    want = torch.zeros(EMBEDDING_SIZE)
    want[3], want[7] = 0.6, 0.8
    assert torch.allclose(emb, want.expand(2, -1), atol=1e-6)
