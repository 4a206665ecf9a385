"""Community voice models: So-VITS-SVC 4.0/4.1 and RVC v1/v2, read safely.

* So-VITS-SVC: ``G_*.pth`` (``{"model": state_dict, "iteration", "optimizer",
  "learning_rate"}``) plus the training ``config.json`` (``model`` / ``data`` sections).
  4.0 models have 256-d content (HuBERT-soft / ContentVec layer 9 + projection), 4.1 models
  768-d (ContentVec layer 12), optionally a volume embedding and an F0 predictor.
* RVC: one ``.pth`` (``{"weight": fp16 state_dict, "config": [18 values], "sr", "f0",
  "version", "info"}``); v1 = 256-d, v2 = 768-d content; 32/40/48 kHz; with or without F0;
  optional ``.index`` (faiss) with the training content vectors for feature retrieval.

Every file is opened with :func:`aisinger.safeload.torch_load_safe` (``weights_only``
unpickling; nothing in the file is executed).  :func:`load_community` returns our own
:class:`~aisinger.nn.vits.SvcGenerator` with the weights checked by key and shape;
:func:`import_voice` converts once into an aisinger voice folder (safetensors + JSON + model
card), which ``aisinger convert`` then uses like any other voice.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aisinger.errors import AisingerError

__all__ = ["CommunityModel", "load_community", "sovits_config", "rvc_config", "import_voice",
           "read_index", "export_sovits", "export_rvc", "CONTENT_ENCODERS"]

# content encoder each layout expects: (asset name, output layer, final projection)
CONTENT_ENCODERS = {
    256: {"asset": "contentvec-fairseq", "layer": 9, "final_proj": True, "dim": 256},
    768: {"asset": "contentvec-fairseq", "layer": 12, "final_proj": False, "dim": 768},
}
RVC_CONTENT_ASSET = "hubert-base-rvc"
RVC_SR = {"32k": 32000, "40k": 40000, "48k": 48000}
SOVITS_UNSUPPORTED = ("use_depthwise_conv", "use_transformer_flow", "speaker_embedding",
                      "flow_share_parameter")


@dataclass
class CommunityModel:
    """A community checkpoint read into our generator.

    model: SvcGenerator (eval mode, float32); config: VitsConfig; source: "sovits-4.0",
    "sovits-4.1", "rvc-v1" or "rvc-v2"; speakers: name -> id; encoder: content encoder spec;
    info: extra facts for the model card.
    """

    model: object
    config: object
    source: str
    speakers: dict = field(default_factory=dict)
    encoder: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)


def _tuple(x) -> tuple:
    return tuple(int(v) for v in x)


def _strip_module(state: dict) -> dict:
    return {k[7:] if k.startswith("module.") else k: v for k, v in state.items()}


def _count(state: dict, prefix: str) -> int:
    """Number of consecutive indices N with keys ``prefix.N.`` present."""
    n = 0
    while any(k.startswith(f"{prefix}.{n}.") for k in state):
        n += 1
    return n


def _flow_shape(state: dict, path: Path) -> tuple[int, int]:
    """(n_flows, WaveNet layers) of the flow, from the keys."""
    idx = sorted({int(k.split(".")[2]) for k in state if k.startswith("flow.flows.")})
    if not idx:
        raise AisingerError(f"{path}: no flow weights (flow.flows.*); not a So-VITS/RVC generator")
    layers = _count(state, "flow.flows.0.enc.in_layers")
    return len(idx), layers


def _window(state: dict, prefix: str) -> int:
    key = f"{prefix}.attn_layers.0.emb_rel_k"
    if key not in state:
        raise AisingerError(f"missing {key}")
    return (int(state[key].shape[1]) - 1) // 2


def _harmonics(state: dict) -> int:
    w = state.get("dec.m_source.l_linear.weight")
    return 0 if w is None else int(w.shape[1])


def sovits_config(cfg_doc: dict, state: dict, cfg_path: Path):
    """VitsConfig of a So-VITS-SVC 4.x model from its config.json and weights."""
    from aisinger.nn.nsf_hifigan import NsfConfig
    from aisinger.nn.vits import VitsConfig

    try:
        m = cfg_doc["model"]
        data = cfg_doc["data"]
        for k in SOVITS_UNSUPPORTED:
            if m.get(k):
                raise AisingerError(f"{cfg_path}: model option {k}=true is not supported "
                                    "(see docs/compat.md)")
        vocoder = m.get("vocoder_name", "nsf-hifigan")
        if vocoder != "nsf-hifigan":
            raise AisingerError(f"{cfg_path}: vocoder {vocoder!r} is not supported (only "
                                "nsf-hifigan)")
        sr = int(data["sampling_rate"])
        hop = int(data["hop_length"])
        rates = _tuple(m["upsample_rates"])
        if math.prod(rates) != hop:
            raise AisingerError(f"{cfg_path}: upsample_rates {list(rates)} multiply to "
                                f"{math.prod(rates)}, but hop_length is {hop}")
        n_flows, flow_layers = _flow_shape(state, cfg_path)
        dec = NsfConfig(in_channels=int(m["inter_channels"]),
                        upsample_initial_channel=int(m["upsample_initial_channel"]),
                        upsample_rates=rates,
                        upsample_kernel_sizes=_tuple(m["upsample_kernel_sizes"]),
                        resblock=str(m["resblock"]),
                        resblock_kernel_sizes=_tuple(m["resblock_kernel_sizes"]),
                        resblock_dilation_sizes=tuple(_tuple(d)
                                                      for d in m["resblock_dilation_sizes"]),
                        sample_rate=sr, harmonics=_harmonics(state) or 9,
                        gin_channels=int(m["gin_channels"]),
                        post_bias="dec.conv_post.bias" in state)
        return VitsConfig(
            family="sovits", content_dim=int(m.get("ssl_dim", 256)),
            inter_channels=int(m["inter_channels"]), hidden_channels=int(m["hidden_channels"]),
            filter_channels=int(m["filter_channels"]), n_heads=int(m["n_heads"]),
            n_layers=int(m["n_layers"]), kernel_size=int(m["kernel_size"]),
            window_size=_window(state, "enc_p.enc_"), n_flows=n_flows,
            flow_layers=int(m.get("n_flow_layer", flow_layers)),
            gin_channels=int(m["gin_channels"]), n_speakers=int(m["n_speakers"]),
            use_f0=True, vol_embedding=bool(m.get("vol_embedding", False)),
            f0_predictor="f0_decoder.proj.weight" in state,
            spec_channels=int(data["filter_length"]) // 2 + 1, decoder=dec)
    except AisingerError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise AisingerError(f"{cfg_path}: not a So-VITS-SVC config.json (bad or missing "
                            f"{str(exc)[:80]})") from None


def rvc_config(doc: dict, state: dict, path: Path):
    """VitsConfig of an RVC inference model from the config list stored in the .pth."""
    from aisinger.nn.nsf_hifigan import NsfConfig
    from aisinger.nn.vits import VitsConfig

    cfg = doc.get("config")
    if not isinstance(cfg, (list, tuple)) or len(cfg) != 18:
        raise AisingerError(f"{path}: RVC model without its 18-entry 'config' list")
    try:
        (spec, _seg, inter, hidden, filt, heads, layers, kernel, _p, resblock, rks, rds, ur,
         uic, uks, spk, gin, sr) = cfg
        if isinstance(sr, str):
            sr = RVC_SR[sr]
        version = str(doc.get("version", "v1"))
        use_f0 = bool(int(doc.get("f0", 1)))
        content_dim = int(state["enc_p.emb_phone.weight"].shape[1]) \
            if "enc_p.emb_phone.weight" in state else (768 if version == "v2" else 256)
        n_flows, flow_layers = _flow_shape(state, path)
        dec = NsfConfig(in_channels=int(inter), upsample_initial_channel=int(uic),
                        upsample_rates=_tuple(ur), upsample_kernel_sizes=_tuple(uks),
                        resblock=str(resblock), resblock_kernel_sizes=_tuple(rks),
                        resblock_dilation_sizes=tuple(_tuple(d) for d in rds),
                        sample_rate=int(sr), harmonics=_harmonics(state) if use_f0 else 0,
                        gin_channels=int(gin), post_bias="dec.conv_post.bias" in state)
        if use_f0 and dec.harmonics == 0:
            raise AisingerError(f"{path}: says f0=1 but has no NSF source weights")
        return VitsConfig(
            family="rvc", content_dim=content_dim, inter_channels=int(inter),
            hidden_channels=int(hidden), filter_channels=int(filt), n_heads=int(heads),
            n_layers=int(layers), kernel_size=int(kernel),
            window_size=_window(state, "enc_p.encoder"), n_flows=n_flows,
            flow_layers=flow_layers, gin_channels=int(gin), n_speakers=int(spk),
            use_f0=use_f0, spec_channels=int(spec), decoder=dec)
    except AisingerError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise AisingerError(f"{path}: bad RVC config list ({str(exc)[:80]})") from None


def build_checked(cfg, state: dict, path: Path, config_name: str):
    """SvcGenerator for ``cfg`` with ``state`` loaded after a key-and-shape check.

    Posterior-encoder weights (``enc_q.*``, training only) are ignored.
    """
    import torch

    from aisinger.nn.vits import SvcGenerator, fold_weight_norm

    try:
        model = SvcGenerator(cfg)
        state = fold_weight_norm({k: v for k, v in state.items() if not k.startswith("enc_q.")})
    except ValueError as exc:
        raise AisingerError(f"{path}: {exc}") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    bad = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or extra or bad:
        what = (f"missing {missing[0]}" if missing else f"unexpected {extra[0]}" if extra
                else f"{bad[0]} has shape {tuple(state[bad[0]].shape)}, {config_name} says "
                     f"{tuple(own[bad[0]].shape)}")
        more = len(missing) + len(extra) + len(bad) - 1
        raise AisingerError(f"{path}: weights do not match {config_name} ({what}"
                            f"{f' and {more} more' if more > 0 else ''})")
    model.load_state_dict({k: v.to(torch.float32) for k, v in state.items()})
    return model.eval()


def _read_checkpoint(path: Path) -> dict:
    from aisinger.safeload import torch_load_safe

    if not path.is_file():
        raise AisingerError(f"{path}: model file not found")
    doc = torch_load_safe(path)
    if not isinstance(doc, dict):
        raise AisingerError(f"{path}: not a So-VITS-SVC or RVC checkpoint (a "
                            f"{type(doc).__name__}, expected a dict)")
    return doc


def _tensors(d, path: Path, key: str) -> dict:
    import torch

    if not isinstance(d, dict) or not all(isinstance(v, torch.Tensor) for v in d.values()):
        raise AisingerError(f"{path}: '{key}' is not a state dict of tensors")
    return _strip_module(dict(d))


def load_community(path: str | Path, config: str | Path | None = None) -> CommunityModel:
    """Read a So-VITS-SVC (``G_*.pth`` + ``config``) or RVC (``.pth``) model.

    The kind is recognised from the checkpoint's layout.  So-VITS needs its config.json
    (``config``, default: ``config.json`` beside the model).  Raises a one-line
    AisingerError naming the file on any problem.
    """
    path = Path(path)
    doc = _read_checkpoint(path)
    if "weight" in doc and "config" in doc:  # RVC inference model
        state = _tensors(doc["weight"], path, "weight")
        cfg = rvc_config(doc, state, path)
        model = build_checked(cfg, state, path, "its config list")
        version = "v2" if cfg.content_dim == 768 else "v1"
        return CommunityModel(model=model, config=cfg, source=f"rvc-{version}",
                              speakers={"speaker0": 0},
                              encoder={"asset": RVC_CONTENT_ASSET,
                                       **{k: v for k, v in CONTENT_ENCODERS[cfg.content_dim]
                                          .items() if k != "asset"}},
                              info={"rvc_info": str(doc.get("info", ""))[:200],
                                    "rvc_sr": str(doc.get("sr", "")),
                                    "f0": int(cfg.use_f0)})
    if "model" in doc:
        state = _tensors(doc["model"], path, "model")
        cfg_path = Path(config) if config is not None else path.with_name("config.json")
        if not cfg_path.is_file():
            raise AisingerError(f"{cfg_path}: So-VITS-SVC config.json not found (give it with "
                                "--config)")
        try:
            cfg_doc = json.loads(cfg_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AisingerError(f"{cfg_path}: unreadable JSON ({type(exc).__name__})") from None
        if not isinstance(cfg_doc, dict):
            raise AisingerError(f"{cfg_path}: expected a JSON object")
        cfg = sovits_config(cfg_doc, state, cfg_path)
        if cfg.content_dim not in CONTENT_ENCODERS:
            raise AisingerError(f"{cfg_path}: ssl_dim {cfg.content_dim} is not supported "
                                "(256 or 768)")
        model = build_checked(cfg, state, path, cfg_path.name)
        speakers = cfg_doc.get("spk") if isinstance(cfg_doc.get("spk"), dict) else {}
        speakers = {str(k): int(v) for k, v in speakers.items()
                    if isinstance(v, int) and 0 <= v < cfg.n_speakers}
        version = "4.1" if (cfg.content_dim == 768 or cfg.vol_embedding) else "4.0"
        enc = dict(CONTENT_ENCODERS[cfg.content_dim])
        return CommunityModel(model=model, config=cfg, source=f"sovits-{version}",
                              speakers=speakers or {"speaker0": 0}, encoder=enc,
                              info={"speech_encoder": str(cfg_doc["model"].get(
                                  "speech_encoder", "vec256l9" if cfg.content_dim == 256
                                  else "vec768l12")),
                                    "iteration": doc.get("iteration")
                                    if isinstance(doc.get("iteration"), int) else None})
    raise AisingerError(f"{path}: not a So-VITS-SVC (G_*.pth with 'model') or RVC (.pth with "
                        "'weight' and 'config') checkpoint")
