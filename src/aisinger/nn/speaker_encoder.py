"""GE2E speaker encoder with the architecture of Resemblyzer's ``VoiceEncoder``.

The network (Wan et al. 2018, "Generalized End-to-End Loss for Speaker Verification") reads a
partial utterance as a sequence of 40-band mel power frames (16 kHz, 25 ms window, 10 ms hop)
and returns a 256-d speaker embedding:

    mels (B, T, 40) -> 3-layer LSTM (hidden 256) -> last layer's final hidden state (B, 256)
                     -> Linear 256->256 -> ReLU -> L2 normalisation -> (B, 256)

Embeddings are non-negative and unit-norm, so the cosine of two embeddings lies in [0, 1].
Weight loading (the ``resemblyzer`` asset, safely unpickled), feature extraction and
utterance-level averaging live in :mod:`aisinger.eval.similarity` (``nn`` holds torch modules
only).
"""

from __future__ import annotations

import torch
from torch import nn

N_MELS = 40
"""Input mel bands per frame."""
HIDDEN_SIZE = 256
"""LSTM hidden size."""
EMBEDDING_SIZE = 256
"""Output embedding size."""
NUM_LAYERS = 3
"""Stacked LSTM layers."""
NORM_EPS = 1e-12  # guards the L2 normalisation of an all-zero (fully ReLU-clipped) output


class SpeakerEncoder(nn.Module):
    """Resemblyzer-compatible speaker encoder (randomly initialised; see :func:`aisinger.eval.similarity.encoder_from_file`)."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(N_MELS, HIDDEN_SIZE, NUM_LAYERS, batch_first=True)
        self.linear = nn.Linear(HIDDEN_SIZE, EMBEDDING_SIZE)
        self.relu = nn.ReLU()

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        """Embed a batch of partial utterances.

        Args:
            mels: float32 ``(batch, frames, 40)`` mel power spectrograms (not log).
        Returns:
            float32 ``(batch, 256)`` L2-normalised, non-negative embeddings.
        """
        _, (hidden, _) = self.lstm(mels)
        raw = self.relu(self.linear(hidden[-1]))
        return raw / raw.norm(dim=1, keepdim=True).clamp_min(NORM_EPS)
