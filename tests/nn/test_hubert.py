"""aisinger.nn.hubert: fairseq -> transformers key mapping (known keys)."""

from __future__ import annotations

import pytest
import torch

from aisinger.nn.hubert import map_fairseq_state


def test_fairseq_keys_map_to_transformers_keys():
    w = torch.zeros(1)
    got = map_fairseq_state({"feature_extractor.conv_layers.0.0.weight": w,
                             "post_extract_proj.bias": w,
                             "encoder.layers.3.self_attn.q_proj.weight": w,
                             "label_embs_concat": w})
    assert set(got) == {"feature_extractor.conv_layers.0.conv.weight",
                        "feature_projection.projection.bias",
                        "encoder.layers.3.attention.q_proj.weight"}


def test_transformers_layout_passes_through_and_unknown_keys_fail():
    w = torch.zeros(1)
    assert map_fairseq_state({"hubert.feature_projection.projection.bias": w}) == \
        {"feature_projection.projection.bias": w}
    with pytest.raises(ValueError, match="unknown HuBERT key"):
        map_fairseq_state({"no.such.key": w})
