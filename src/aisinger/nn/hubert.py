"""HuBERT / ContentVec content encoder (16 kHz speech -> 50 frames/s features).

Pure model code: transformers' ``HubertModel`` (no torchaudio needed) plus the optional final
projection (768 -> 256) that So-VITS 4.0 / RVC v1 use.  Layouts:

* 768-d: the output of transformer layer 12 (So-VITS 4.1 ``vec768l12``, RVC v2);
* 256-d: layer 9 output through ``final_proj`` (So-VITS 4.0 ``vec256l9``, RVC v1).

The encoder is built with only the layers that are needed (the output of layer L of a
post-norm HuBERT is the last hidden state of an L-layer model), so layer 9 costs 9 layers.

:func:`map_fairseq_state` maps a fairseq HuBERT/ContentVec state dict (the community's
``hubert_base.pt`` / ``checkpoint_best_legacy_500.pt``) onto transformers' key names without
fairseq; transformers-layout state dicts (hub ``HubertModel`` weights) pass through.
:func:`hubert_config_from_state` reads the architecture from the weights' shapes (standard
wav2vec 2.0 strides; 64-d attention heads).
"""

from __future__ import annotations

import re

import torch
from torch import nn

__all__ = ["ContentEncoder", "map_fairseq_state", "hubert_config_from_state", "HEAD_DIM"]

HEAD_DIM = 64  # attention head width of HuBERT base/large (heads = hidden / 64)
CONV_STRIDES = (5, 2, 2, 2, 2, 2, 2)

_FAIRSEQ_RULES = [
    (r"^feature_extractor\.conv_layers\.(\d+)\.0\.weight$", r"feature_extractor.conv_layers.\1.conv.weight"),
    (r"^feature_extractor\.conv_layers\.(\d+)\.0\.bias$", r"feature_extractor.conv_layers.\1.conv.bias"),
    (r"^feature_extractor\.conv_layers\.0\.2\.(weight|bias)$", r"feature_extractor.conv_layers.0.layer_norm.\1"),
    (r"^layer_norm\.(weight|bias)$", r"feature_projection.layer_norm.\1"),
    (r"^post_extract_proj\.(weight|bias)$", r"feature_projection.projection.\1"),
    (r"^encoder\.pos_conv\.0\.bias$", r"encoder.pos_conv_embed.conv.bias"),
    (r"^encoder\.pos_conv\.0\.weight_g$", r"encoder.pos_conv_embed.conv.weight_g"),
    (r"^encoder\.pos_conv\.0\.weight_v$", r"encoder.pos_conv_embed.conv.weight_v"),
    (r"^encoder\.layers\.(\d+)\.self_attn\.(q|k|v|out)_proj\.(weight|bias)$", r"encoder.layers.\1.attention.\2_proj.\3"),
    (r"^encoder\.layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)$", r"encoder.layers.\1.layer_norm.\2"),
    (r"^encoder\.layers\.(\d+)\.fc1\.(weight|bias)$", r"encoder.layers.\1.feed_forward.intermediate_dense.\2"),
    (r"^encoder\.layers\.(\d+)\.fc2\.(weight|bias)$", r"encoder.layers.\1.feed_forward.output_dense.\2"),
    (r"^encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)$", r"encoder.layers.\1.final_layer_norm.\2"),
    (r"^encoder\.layer_norm\.(weight|bias)$", r"encoder.layer_norm.\1"),
    (r"^mask_emb$", r"masked_spec_embed"),
    (r"^final_proj\.(weight|bias)$", r"final_proj.\1"),
]
_DROPPED = re.compile(r"^(label_embs_concat|encoder\.layers\.\d+\.self_attn\.bias_[kv])$")


def map_fairseq_state(state: dict) -> dict:
    """fairseq HuBERT keys -> transformers ``HubertModel`` keys (+ ``final_proj.*``).

    A state dict already in transformers' layout (``feature_projection.*``) is returned with an
    optional ``hubert.`` prefix removed.  Raises ValueError naming the first unknown key.
    """
    if any(k.startswith(("feature_projection.", "hubert.feature_projection."))
           for k in state):
        return {k[7:] if k.startswith("hubert.") else k: v for k, v in state.items()}
    out = {}
    for k, v in state.items():
        if _DROPPED.match(k):
            continue
        for pat, rep in _FAIRSEQ_RULES:
            if re.match(pat, k):
                out[re.sub(pat, rep, k)] = v
                break
        else:
            raise ValueError(f"unknown HuBERT key {k!r}")
    return out


def hubert_config_from_state(state: dict) -> dict:
    """HubertConfig keyword arguments read from a (transformers-layout) state dict."""
    convs = sorted(int(m.group(1)) for k in state
                   if (m := re.match(r"feature_extractor\.conv_layers\.(\d+)\.conv\.weight$", k)))
    if not convs:
        raise ValueError("no feature-extractor convolutions")
    conv_dim = tuple(int(state[f"feature_extractor.conv_layers.{i}.conv.weight"].shape[0])
                     for i in convs)
    conv_kernel = tuple(int(state[f"feature_extractor.conv_layers.{i}.conv.weight"].shape[2])
                        for i in convs)
    hidden = int(state["encoder.layer_norm.weight"].shape[0])
    layers = len({int(m.group(1)) for k in state
                  if (m := re.match(r"encoder\.layers\.(\d+)\.", k))})
    pos_v = state.get("encoder.pos_conv_embed.conv.weight_v",
                      state.get("encoder.pos_conv_embed.conv.parametrizations.weight.original1"))
    if pos_v is None:
        raise ValueError("no positional convolution")
    return dict(
        hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // HEAD_DIM),
        intermediate_size=int(state["encoder.layers.0.feed_forward.intermediate_dense.weight"].shape[0]),
        conv_dim=conv_dim, conv_kernel=conv_kernel, conv_stride=CONV_STRIDES[:len(conv_dim)],
        conv_bias=f"feature_extractor.conv_layers.0.conv.bias" in state,
        num_conv_pos_embeddings=int(pos_v.shape[2]),
        num_conv_pos_embedding_groups=hidden // int(pos_v.shape[1]),
        feat_extract_norm="group", do_stable_layer_norm=False, apply_spec_augment=False,
        layerdrop=0.0, hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
        feat_proj_dropout=0.0, final_dropout=0.0,
    )


class ContentEncoder(nn.Module):
    """HuBERT truncated after ``layer`` layers, plus ``final_proj`` when ``project``."""

    def __init__(self, config_kwargs: dict, layer: int, project: bool,
                 proj_dim: int | None = None):
        super().__init__()
        from transformers import HubertConfig, HubertModel

        kw = dict(config_kwargs)
        if not 1 <= layer <= kw["num_hidden_layers"]:
            raise ValueError(f"layer {layer} not in 1..{kw['num_hidden_layers']}")
        kw["num_hidden_layers"] = layer
        self.layer = layer
        self.hubert = HubertModel(HubertConfig(**kw))
        self.final_proj = nn.Linear(kw["hidden_size"], proj_dim) if project else None

    @classmethod
    def from_state(cls, state: dict, layer: int, project: bool) -> ContentEncoder:
        """Build from a fairseq- or transformers-layout state dict (ValueError if unusable)."""
        state = map_fairseq_state(state)
        kw = hubert_config_from_state(state)
        proj_dim = None
        if project:
            if "final_proj.weight" not in state:
                raise ValueError("the 256-d layout needs final_proj weights, which this "
                                 "checkpoint lacks")
            proj_dim = int(state["final_proj.weight"].shape[0])
        enc = cls(kw, layer, project, proj_dim)
        own = enc.hubert.state_dict()
        # weight-norm naming differs between transformers versions
        alias = {"weight_g": "parametrizations.weight.original0",
                 "weight_v": "parametrizations.weight.original1"}
        fixed = {}
        for k, v in state.items():
            if k.startswith("final_proj."):
                continue
            if k not in own:
                for a, b in alias.items():
                    if k.endswith(a) and k[: -len(a)] + b in own:
                        k = k[: -len(a)] + b
                    elif k.endswith(b) and k[: -len(b)] + a in own:
                        k = k[: -len(b)] + a
            m = re.match(r"encoder\.layers\.(\d+)\.", k)
            if m and int(m.group(1)) >= layer:
                continue  # layers above the output layer are not needed
            fixed[k] = v
        missing = sorted(set(own) - set(fixed))
        extra = sorted(set(fixed) - set(own))
        bad = [k for k in own if k in fixed and tuple(fixed[k].shape) != tuple(own[k].shape)]
        if missing or extra or bad:
            what = (f"missing {missing[0]}" if missing else f"unexpected {extra[0]}" if extra
                    else f"{bad[0]} has a different shape")
            raise ValueError(f"weights do not fit HuBERT ({what})")
        enc.hubert.load_state_dict({k: v.to(torch.float32) for k, v in fixed.items()})
        if project:
            enc.final_proj.load_state_dict({"weight": state["final_proj.weight"].float(),
                                            "bias": state["final_proj.bias"].float()})
        return enc.eval()

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """wav: (B, N) 16 kHz -> (B, T, D) with T = (N - 400) // 320 + 1 frames."""
        h = self.hubert(wav).last_hidden_state
        return self.final_proj(h) if self.final_proj is not None else h
