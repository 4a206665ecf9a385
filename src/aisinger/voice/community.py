"""Community voice models: So-VITS-SVC 4.0/4.1 and RVC v1/v2, read safely.

* So-VITS-SVC: ``G_*.pth`` (``{"model": state_dict, "iteration", "optimizer",
  "learning_rate"}``) plus the training ``config.json`` (``model`` / ``data`` sections).
  4.0 models have 256-d content (HuBERT-soft / ContentVec layer 9 + projection), 4.1 models
  768-d (ContentVec layer 12), optionally a volume embedding and an F0 predictor.
* RVC: one ``.pth`` (``{"weight": fp16 state_dict, "config": [18 values], "sr", "f0",
  "version", "info"}``); v1 = 256-d, v2 = 768-d content; 32/40/48 kHz; with or without F0;
  optional ``.index`` (faiss) with the training content vectors for feature retrieval.

Every file is opened with :func:`aisinger.io.safeload.torch_load_safe` (``weights_only``
unpickling; nothing in the file is executed).  :func:`load_community` returns our own
:class:`~aisinger.nn.vits.SvcGenerator` with the weights checked by key and shape;
:func:`import_voice` converts once into an aisinger voice folder (safetensors + JSON + model
card), which ``aisinger convert`` then uses like any other voice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aisinger.consent import check_scope, load_consent
from aisinger.errors import AisingerError
from aisinger.io.fileio import atomic_path, read_json_object, write_json
from aisinger.io.safeload import torch_load_safe
from aisinger.voice.folder import save_vits_voice, state_mismatch

__all__ = ["CommunityModel", "load_community", "sovits_config", "rvc_config", "import_voice",
           "read_index", "export_sovits", "export_rvc", "CONTENT_ENCODERS"]

# content encoder each layout expects: (asset name, output layer, final projection)
CONTENT_ENCODERS = {
    256: {"asset": "contentvec-base", "layer": 9, "final_proj": True, "dim": 256},
    768: {"asset": "contentvec-base", "layer": 12, "final_proj": False, "dim": 768},
}
RVC_CONTENT_ASSET = "contentvec-base"
# So-VITS speech_encoder names served by those layouts (the -onnx variants are the same model)
SOVITS_ENCODERS = {256: ("vec256l9", "vec256l9-onnx"), 768: ("vec768l12", "vec768l12-onnx")}
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


def _window(state: dict, prefix: str, path: Path) -> int:
    key = f"{prefix}.attn_layers.0.emb_rel_k"
    if key not in state:
        raise AisingerError(f"{path}: missing {key}; not a complete So-VITS/RVC generator")
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
            window_size=_window(state, "enc_p.enc_", cfg_path), n_flows=n_flows,
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
            window_size=_window(state, "enc_p.encoder", path), n_flows=n_flows,
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

    from aisinger.nn.vits import SvcGenerator, check_sizes, fold_weight_norm

    # every size is checked against bounds, then the model is built on the "meta" device (no
    # memory) and its shapes compared with the file's own tensors; only a model the file's
    # weights fill exactly is allocated
    try:
        check_sizes(cfg)
        with torch.device("meta"):
            skeleton = SvcGenerator(cfg)
        state = fold_weight_norm({k: v for k, v in state.items() if not k.startswith("enc_q.")})
    except ValueError as exc:
        raise AisingerError(f"{path}: {config_name}: {exc}") from None
    why = state_mismatch(skeleton, state, config_name)
    del skeleton
    if why:
        raise AisingerError(f"{path}: weights do not match {config_name} ({why})")
    model = SvcGenerator(cfg)
    model.load_state_dict({k: v.to(torch.float32) for k, v in state.items()})
    return model.eval()


def _read_checkpoint(path: Path) -> dict:
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

        cfg_doc = read_json_object(cfg_path)
        cfg = sovits_config(cfg_doc, state, cfg_path)
        if cfg.content_dim not in CONTENT_ENCODERS:
            raise AisingerError(f"{cfg_path}: ssl_dim {cfg.content_dim} is not supported "
                                "(256 or 768)")
        encoder = str(cfg_doc["model"].get("speech_encoder") or "")
        wanted = SOVITS_ENCODERS[cfg.content_dim]
        if encoder and encoder not in wanted:
            raise AisingerError(f"{cfg_path}: speech_encoder {encoder!r} is not supported "
                                f"(with ssl_dim {cfg.content_dim}: {', '.join(wanted)})")
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


# --------------------------------------------------------------------------------------------
# RVC feature index

MAX_INDEX_VECTORS = 100_000  # retrieval vectors kept (evenly subsampled beyond this)


def read_index(path: str | Path, dim: int) -> np.ndarray:
    """The stored content vectors of an RVC ``.index`` file (faiss), (N, dim) float32.

    The file is parsed by faiss-cpu's reader (a binary format, not a pickle).  More than
    :data:`MAX_INDEX_VECTORS` vectors are evenly subsampled.
    """
    path = Path(path)
    if not path.is_file():
        raise AisingerError(f"{path}: index file not found")
    try:
        import faiss
    except ImportError:  # pragma: no cover - faiss-cpu is a dependency
        raise AisingerError(f"{path}: reading .index files needs faiss-cpu "
                            "(pip install faiss-cpu)") from None
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as exc:
        raise AisingerError(f"{path}: not a faiss index ({str(exc).splitlines()[0][:120]})") \
            from None
    if index.d != dim:
        raise AisingerError(f"{path}: index vectors are {index.d}-d, the model needs {dim}-d")
    n = int(index.ntotal)
    if n == 0:
        raise AisingerError(f"{path}: the index is empty")
    try:
        ivf = faiss.extract_index_ivf(index)
        ivf.make_direct_map()
    except RuntimeError:
        pass  # flat indexes reconstruct directly
    try:
        vecs = index.reconstruct_n(0, n)
    except RuntimeError as exc:
        raise AisingerError(f"{path}: cannot read the stored vectors "
                            f"({str(exc).splitlines()[0][:120]})") from None
    vecs = np.asarray(vecs, dtype=np.float32)
    if n > MAX_INDEX_VECTORS:
        vecs = vecs[np.linspace(0, n - 1, MAX_INDEX_VECTORS).round().astype(np.int64)]
    if not np.all(np.isfinite(vecs)):
        raise AisingerError(f"{path}: the index holds non-finite vectors")
    return vecs


# --------------------------------------------------------------------------------------------
# import into an aisinger voice folder


def import_voice(path: str | Path, out_dir: str | Path, consent: str | Path | None,
                 config: str | Path | None = None, index: str | Path | None = None,
                 speaker: str | None = None, name: str | None = None) -> Path:
    """Convert a community model once into an aisinger voice folder and return its path.

    consent: a consent record (``aisinger.consent/1``) of the voice's owner that permits
    ``convert`` — the import is refused without one.  config: So-VITS config.json; index: RVC
    .index for feature retrieval; speaker: name (So-VITS ``spk`` map) or id of the speaker to
    use from a multi-speaker model (default: the first).
    """
    if consent is None:
        raise AisingerError("no consent record: a community voice model can only be imported "
                            "with its owner's consent (pass --consent FILE)")
    record = load_consent(consent)
    check_scope(record, "convert")
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise AisingerError(f"{out}: exists and is not an empty folder; choose a new voice "
                            "folder")
    cm = load_community(path, config)
    sid = 0
    if speaker is not None:
        if speaker in cm.speakers:
            sid = cm.speakers[speaker]
        elif speaker.isdigit() and int(speaker) < cm.config.n_speakers:
            sid = int(speaker)
        else:
            raise AisingerError(f"{path}: no speaker {speaker!r} (known: "
                                f"{', '.join(cm.speakers) or 'none'})")
    elif cm.speakers:
        sid = min(cm.speakers.values())
    vectors = read_index(index, cm.config.content_dim) if index is not None else None
    if vectors is not None and cm.config.family != "rvc":
        raise AisingerError(f"{index}: feature indexes are an RVC feature; So-VITS models do not "
                            "use them")
    n_params = sum(p.numel() for p in cm.model.parameters())
    card = {"name": name or out.name,
            "imported": {"source": cm.source, "file": Path(path).name,
                         "sample_rate": cm.config.sample_rate, "content": cm.encoder["dim"],
                         "content_encoder": cm.encoder["asset"], "speaker": sid,
                         "parameters": n_params,
                         "index_vectors": int(vectors.shape[0]) if vectors is not None else 0,
                         **{k: v for k, v in cm.info.items() if v not in (None, "")}},
            "model": {"decoder": f"vits/{cm.source}", "parameters": n_params,
                      "sample_rate": cm.config.sample_rate},
            "consent": f"{record.voice_owner} ({record.scope}, {record.date}, uses: "
                       f"{', '.join(record.permitted_uses)})"}
    meta = {"source": cm.source, "content_encoder": cm.encoder, "speakers": cm.speakers,
            "speaker": sid}
    return save_vits_voice(out, cm.model, meta, card, index=vectors, consent=consent)


# --------------------------------------------------------------------------------------------
# writing community layouts (tests, round trips, fine-tuning bases)


def _wn_names(model, family: str) -> list[str]:
    """Modules stored weight-normalised (``weight_g``/``weight_v``) in the community layout."""
    names = []
    for k in model.state_dict():
        if not k.endswith(".weight"):
            continue
        base = k[:-7]
        if base.startswith(("dec.ups.", "dec.resblocks.")) or \
                (base.startswith("flow.flows.") and ".enc." in base):
            names.append(base)
        elif family == "sovits" and base in ("dec.conv_pre", "dec.conv_post"):
            names.append(base)
    return names


def export_sovits(model, pth: str | Path, config_json: str | Path,
                  speakers: dict | None = None) -> None:
    """Write ``model`` (family sovits) as a So-VITS-SVC ``G_*.pth`` + ``config.json``."""
    import torch

    from aisinger.nn.vits import unfold_weight_norm

    cfg = model.cfg
    d = cfg.decoder
    state = unfold_weight_norm(dict(model.state_dict()), _wn_names(model, "sovits"))
    with atomic_path(Path(pth)) as tmp:
        torch.save({"model": state, "iteration": 0, "optimizer": None,
                    "learning_rate": 1e-4}, tmp)
    write_json(Path(config_json), {
        "data": {"sampling_rate": d.sample_rate, "hop_length": d.hop,
                 "filter_length": (cfg.spec_channels - 1) * 2,
                 "win_length": (cfg.spec_channels - 1) * 2, "n_mel_channels": 80,
                 "max_wav_value": 32768.0},
        "model": {"inter_channels": cfg.inter_channels, "hidden_channels": cfg.hidden_channels,
                  "filter_channels": cfg.filter_channels, "n_heads": cfg.n_heads,
                  "n_layers": cfg.n_layers, "kernel_size": cfg.kernel_size, "p_dropout": 0.1,
                  "resblock": d.resblock, "resblock_kernel_sizes": list(d.resblock_kernel_sizes),
                  "resblock_dilation_sizes": [list(x) for x in d.resblock_dilation_sizes],
                  "upsample_rates": list(d.upsample_rates),
                  "upsample_initial_channel": d.upsample_initial_channel,
                  "upsample_kernel_sizes": list(d.upsample_kernel_sizes),
                  "n_layers_q": 3, "n_flow_layer": cfg.flow_layers, "use_spectral_norm": False,
                  "gin_channels": cfg.gin_channels, "ssl_dim": cfg.content_dim,
                  "n_speakers": cfg.n_speakers, "vocoder_name": "nsf-hifigan",
                  "speech_encoder": "vec768l12" if cfg.content_dim == 768 else "vec256l9",
                  "vol_embedding": cfg.vol_embedding,
                  "use_automatic_f0_prediction": cfg.f0_predictor},
        "spk": speakers or {f"speaker{i}": i for i in range(cfg.n_speakers)}})


def export_rvc(model, pth: str | Path, version: str | None = None) -> None:
    """Write ``model`` (family rvc) as an RVC inference ``.pth`` (fp16 weights, config list)."""
    import torch

    from aisinger.nn.vits import unfold_weight_norm

    cfg = model.cfg
    d = cfg.decoder
    state = unfold_weight_norm(dict(model.state_dict()), _wn_names(model, "rvc"))
    state = {k: v.half() for k, v in state.items()}
    sr_name = {v: k for k, v in RVC_SR.items()}.get(d.sample_rate, str(d.sample_rate))
    conf = [cfg.spec_channels, 32, cfg.inter_channels, cfg.hidden_channels, cfg.filter_channels,
            cfg.n_heads, cfg.n_layers, cfg.kernel_size, 0, d.resblock,
            list(d.resblock_kernel_sizes), [list(x) for x in d.resblock_dilation_sizes],
            list(d.upsample_rates), d.upsample_initial_channel, list(d.upsample_kernel_sizes),
            cfg.n_speakers, cfg.gin_channels, d.sample_rate]
    with atomic_path(Path(pth)) as tmp:
        torch.save({"weight": state, "config": conf, "info": "aisinger export", "sr": sr_name,
                    "f0": int(cfg.use_f0),
                    "version": version or ("v2" if cfg.content_dim == 768 else "v1")}, tmp)
