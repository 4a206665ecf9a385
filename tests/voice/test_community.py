"""Community voice models (So-VITS-SVC 4.x, RVC v1/v2): reference reproduction, safe loading,
import -> convert, round trips through the community layouts, clear errors.

The reference outputs in ``shared/reference/`` were produced by the original projects' code
(see their README.md); a copy of ``shared/`` lies beside the checkout (``../shared``; for a
worktree under ``wt/`` one level further up).  Content encoders here are tiny random HuBERTs
built by the tests, saved in the fairseq layout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from aisinger.consent import save_consent, self_consent
from aisinger.errors import AisingerError

REPO = Path(__file__).resolve().parents[2]
SR = 44100


def _reference_dir() -> Path | None:
    for base in (REPO.parent / "shared", REPO.parent.parent / "shared"):
        if (base / "reference").is_dir():
            return base / "reference"
    return None


REF = _reference_dir()
needs_ref = pytest.mark.skipif(REF is None, reason="shared/reference/ (acceptance data beside "
                                                   "the checkout) is not present")


@pytest.fixture
def consent(tmp_path) -> Path:
    return save_consent(self_consent("Lab Voice"), tmp_path / "consent.json")


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max())


# --------------------------------------------------------------------------------------------
# reference reproduction


@needs_ref
def test_sovits41_reference(tmp_path, consent):
    from aisinger.voice.community import import_voice, load_community
    from aisinger.voice.folder import load_voice

    d = REF / "sovits41"
    z = np.load(d / "inputs.npz")
    expected = np.load(d / "expected.npy")
    cm = load_community(d / "G_ref.pth", d / "config.json")
    assert cm.source == "sovits-4.1" and cm.config.vol_embedding and cm.config.f0_predictor
    voice = load_voice(import_voice(d / "G_ref.pth", tmp_path / "v", consent,
                                    config=d / "config.json"))
    for model in (cm.model, voice.model):
        with torch.no_grad():
            y = model.infer(torch.from_numpy(z["c"]).transpose(1, 2), torch.from_numpy(z["f0"]),
                            torch.from_numpy(z["sid"]), uv=torch.from_numpy(z["uv"]),
                            vol=torch.from_numpy(z["vol"]))[0].numpy()
        assert y.shape == expected.shape
        assert _rel_err(y, expected) <= 1e-4
    # the F0 predictor runs and gives a finite, positive curve of the right length
    with torch.no_grad():
        f0p = cm.model.predict_f0(torch.from_numpy(z["c"]).transpose(1, 2),
                                  torch.from_numpy(z["f0"]), torch.from_numpy(z["uv"]),
                                  torch.from_numpy(z["sid"]), torch.from_numpy(z["vol"]))
    assert f0p.shape == z["f0"].shape and torch.isfinite(f0p).all()


@needs_ref
def test_rvc_v2_40k_reference(tmp_path, consent):
    from aisinger.voice.community import import_voice, load_community
    from aisinger.voice.folder import load_voice

    d = REF / "rvc_v2_40k"
    z = np.load(d / "inputs.npz")
    expected = np.load(d / "expected.npy")
    cm = load_community(d / "ref_v2_40k.pth")
    assert cm.source == "rvc-v2" and cm.config.sample_rate == 40000
    voice = load_voice(import_voice(d / "ref_v2_40k.pth", tmp_path / "v", consent))
    assert voice.family == "vits" and voice.sample_rate == 40000
    for model in (cm.model, voice.model):
        with torch.no_grad():
            y = model.infer(torch.from_numpy(z["phone"]), torch.from_numpy(z["nsff0"]),
                            torch.from_numpy(z["sid"]),
                            coarse=torch.from_numpy(z["pitch"]))[0].numpy()
        assert y.shape == expected.shape
        assert _rel_err(y, expected) <= 1e-4
    # our own F0 -> coarse bins agree with the pitch bins of the reference inputs
    from aisinger.nn.vits import f0_to_coarse

    voiced = z["nsff0"] > 0
    ours = f0_to_coarse(torch.from_numpy(z["nsff0"])).numpy()
    assert np.mean(ours[voiced] == z["pitch"][voiced]) > 0.99


# --------------------------------------------------------------------------------------------
# safety


class _Hostile:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_hostile_model_file_is_refused_and_nothing_runs(tmp_path, consent):
    from aisinger.voice.community import import_voice

    marker = tmp_path / "pwned"
    evil = tmp_path / "G_evil.pth"
    torch.save({"model": {"emb_g.weight": torch.zeros(1, 2)}, "iteration": _Hostile(marker)},
               evil)
    (tmp_path / "config.json").write_text("{}")
    # under plain unpickling this file would run the command
    assert "system" in " ".join(__import__("aisinger.io.safeload", fromlist=["x"])
                                .pickle_globals(evil))
    with pytest.raises(AisingerError) as err:
        import_voice(evil, tmp_path / "voice", consent)
    msg = str(err.value)
    assert str(evil) in msg and "allow-list" in msg and "system" in msg
    assert not marker.exists() and not (tmp_path / "voice").exists()
    # the same refusal for an RVC-layout file and for a content-encoder checkpoint
    evil2 = tmp_path / "evil_rvc.pth"
    torch.save({"weight": {}, "config": [_Hostile(marker)]}, evil2)
    with pytest.raises(AisingerError, match="allow-list"):
        import_voice(evil2, tmp_path / "voice2", consent)
    from aisinger.features.hubert import load_encoder

    with pytest.raises(AisingerError, match="allow-list"):
        load_encoder(evil2, 9, True)
    assert not marker.exists()


def test_framework_config_objects_stay_inert(tmp_path):
    """fairseq-style metadata (argparse / omegaconf / fairseq classes) loads as inert stand-ins:
    even a class under those names whose unpickling would run code does nothing."""
    from aisinger.io.safeload import Inert, torch_load_inert

    marker = tmp_path / "pwned"
    mod = types.ModuleType("fairseq.evil")

    class Task:
        def __reduce__(self):
            return (Task, (str(marker),))

        def __init__(self, path=None):
            if path:
                Path(path).touch()  # would run under plain unpickling

    Task.__module__ = "fairseq.evil"
    Task.__qualname__ = "Task"
    mod.Task = Task
    parent = types.ModuleType("fairseq")
    parent.evil = mod
    saved = {k: sys.modules.get(k) for k in ("fairseq", "fairseq.evil")}
    sys.modules.update({"fairseq": parent, "fairseq.evil": mod})
    try:
        path = tmp_path / "ck.pt"
        torch.save({"args": argparse.Namespace(layers=12), "task": Task(),
                    "model": {"w": torch.ones(2)}}, path)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    doc = torch_load_inert(path)
    assert isinstance(doc["args"], Inert) and isinstance(doc["task"], Inert)
    assert torch.equal(doc["model"]["w"], torch.ones(2))
    assert not marker.exists()


# --------------------------------------------------------------------------------------------
# tiny models built from our own code


def _sovits_cfg(content_dim=256, vol=False, f0_pred=False, n_speakers=2):
    from aisinger.nn.nsf_hifigan import NsfConfig
    from aisinger.nn.vits import VitsConfig

    dec = NsfConfig(in_channels=16, upsample_initial_channel=32, upsample_rates=(8, 8, 2, 2, 2),
                    upsample_kernel_sizes=(16, 16, 4, 4, 4), resblock="1",
                    resblock_kernel_sizes=(3, 7), resblock_dilation_sizes=((1, 3, 5), (1, 3, 5)),
                    sample_rate=44100, harmonics=9, gin_channels=16)
    return VitsConfig(family="sovits", content_dim=content_dim, inter_channels=16,
                      hidden_channels=32, filter_channels=64, n_heads=2, n_layers=2,
                      kernel_size=3, window_size=4, n_flows=2, flow_layers=2, gin_channels=16,
                      n_speakers=n_speakers, vol_embedding=vol, f0_predictor=f0_pred,
                      spec_channels=1025, decoder=dec)


def _rvc_cfg(content_dim=768, sr=48000, use_f0=True):
    from aisinger.nn.nsf_hifigan import NsfConfig
    from aisinger.nn.vits import VitsConfig

    rates, kernels = {48000: ((12, 10, 2, 2), (24, 20, 4, 4)),
                      40000: ((10, 10, 2, 2), (16, 16, 4, 4)),
                      32000: ((10, 8, 2, 2), (20, 16, 4, 4))}[sr]
    dec = NsfConfig(in_channels=16, upsample_initial_channel=32, upsample_rates=rates,
                    upsample_kernel_sizes=kernels, resblock="1", resblock_kernel_sizes=(3, 7),
                    resblock_dilation_sizes=((1, 3, 5), (1, 3, 5)), sample_rate=sr,
                    harmonics=1 if use_f0 else 0, gin_channels=16, post_bias=False)
    return VitsConfig(family="rvc", content_dim=content_dim, inter_channels=16,
                      hidden_channels=32, filter_channels=64, n_heads=2, n_layers=2,
                      kernel_size=3, window_size=10, n_flows=4, flow_layers=3, gin_channels=16,
                      n_speakers=3, use_f0=use_f0, spec_channels=1025, decoder=dec)


def _random_model(cfg, seed=0):
    from aisinger.nn.vits import SvcGenerator

    torch.manual_seed(seed)
    m = SvcGenerator(cfg)
    with torch.no_grad():  # the flow's output convs start at zero; make every weight count
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return m.eval()


def _inputs(cfg, t=60, seed=1):
    g = torch.Generator().manual_seed(seed)
    c = torch.randn(1, t, cfg.content_dim, generator=g)
    f0 = 200.0 + 30.0 * torch.sin(torch.arange(t) / 7.0)[None]
    f0[:, 40:46] = 0.0
    vol = torch.rand(1, t, generator=g) * 0.3
    return c, f0, vol


def _infer(model, c, f0, vol, sid=1):
    with torch.no_grad():
        return model.infer(c, f0, torch.tensor([sid]), vol=vol)[0].numpy()


def test_sovits40_round_trip(tmp_path, consent):
    """4.0 layout (256-d content): our model -> G_*.pth + config.json -> import -> same output."""
    from aisinger.voice.community import export_sovits, import_voice, load_community
    from aisinger.voice.folder import load_voice

    cfg = _sovits_cfg(content_dim=256)
    model = _random_model(cfg)
    export_sovits(model, tmp_path / "G_100.pth", tmp_path / "config.json",
                  speakers={"alice": 0, "bob": 1})
    raw = torch.load(tmp_path / "G_100.pth", weights_only=True)["model"]
    assert "dec.ups.0.weight_g" in raw and "flow.flows.0.enc.in_layers.0.weight_v" in raw
    cm = load_community(tmp_path / "G_100.pth")  # config.json beside it
    assert cm.source == "sovits-4.0" and cm.encoder["layer"] == 9 and cm.encoder["final_proj"]
    c, f0, vol = _inputs(cfg)
    ref = _infer(model, c, f0, None)
    assert ref.shape == (60 * 512,) and np.abs(ref).max() > 1e-3
    assert _rel_err(_infer(cm.model, c, f0, None), ref) < 1e-5
    out = import_voice(tmp_path / "G_100.pth", tmp_path / "voice", consent, speaker="bob")
    voice = load_voice(out)
    assert voice.meta["speaker"] == 1 and voice.meta["speakers"] == {"alice": 0, "bob": 1}
    assert _rel_err(_infer(voice.model, c, f0, None), ref) < 1e-5
    card = json.loads((out / "model_card.json").read_text())
    assert card["imported"]["source"] == "sovits-4.0" and (out / "consent.json").is_file()


def test_rvc48k_round_trip_and_no_f0_model(tmp_path, consent):
    """RVC v2 48 kHz (fp16 file) and an RVC v1 32 kHz model without F0 round-trip."""
    from aisinger.voice.community import export_rvc, import_voice
    from aisinger.voice.folder import load_voice

    cfg = _rvc_cfg(768, 48000)
    model = _random_model(cfg)
    with torch.no_grad():  # the file is fp16: compare with the fp16-rounded weights
        for p in model.parameters():
            p.copy_(p.half().float())
    export_rvc(model, tmp_path / "v48.pth")
    voice = load_voice(import_voice(tmp_path / "v48.pth", tmp_path / "voice48", consent))
    assert voice.meta["source"] == "rvc-v2" and voice.sample_rate == 48000
    c, f0, _ = _inputs(cfg)
    ref = _infer(model, c, f0, None)
    assert ref.shape == (60 * 480,)
    # weight norm is stored as (g, v) in fp16: the refolded weights differ by fp16 rounding
    assert _rel_err(_infer(voice.model, c, f0, None), ref) < 2e-3 * max(1.0, np.abs(ref).max())

    cfg1 = _rvc_cfg(256, 32000, use_f0=False)
    m1 = _random_model(cfg1, seed=3)
    export_rvc(m1, tmp_path / "v1.pth")
    v1 = load_voice(import_voice(tmp_path / "v1.pth", tmp_path / "voice32", consent))
    assert v1.meta["source"] == "rvc-v1" and not v1.model_config.use_f0
    c1, _, _ = _inputs(cfg1)
    with torch.no_grad():
        y = v1.model.infer(c1, None, torch.tensor([0]))[0].numpy()
    assert y.shape == (60 * 320,) and np.all(np.isfinite(y))


def test_randomness_is_controlled():
    cfg = _sovits_cfg(768, vol=True, f0_pred=True)
    model = _random_model(cfg)
    c, f0, vol = _inputs(cfg)
    a = model.infer(c, f0, torch.tensor([0]), vol=vol, noise_scale=0.4,
                    generator=torch.Generator().manual_seed(5))
    b = model.infer(c, f0, torch.tensor([0]), vol=vol, noise_scale=0.4,
                    generator=torch.Generator().manual_seed(5))
    d = model.infer(c, f0, torch.tensor([0]), vol=vol)
    e = model.infer(c, f0, torch.tensor([0]), vol=vol)
    assert torch.equal(a, b) and torch.equal(d, e) and not torch.equal(a, d)


# --------------------------------------------------------------------------------------------
# errors


def test_missing_and_mismatched_config(tmp_path, consent):
    from aisinger.voice.community import export_rvc, export_sovits, import_voice, load_community

    model = _random_model(_sovits_cfg(256))
    g = tmp_path / "m" / "G_1.pth"
    g.parent.mkdir()
    export_sovits(model, g, tmp_path / "elsewhere.json")
    with pytest.raises(AisingerError, match=r"config\.json: So-VITS-SVC config\.json not found"):
        load_community(g)
    doc = json.loads((tmp_path / "elsewhere.json").read_text())
    doc["model"]["hidden_channels"] = 48
    (tmp_path / "wrong.json").write_text(json.dumps(doc))
    with pytest.raises(AisingerError) as err:
        load_community(g, tmp_path / "wrong.json")
    assert str(g) in str(err.value) and "do not match wrong.json" in str(err.value)
    doc["model"]["hidden_channels"] = 32
    doc["data"]["hop_length"] = 480
    (tmp_path / "hop.json").write_text(json.dumps(doc))
    with pytest.raises(AisingerError, match="hop.json: upsample_rates"):
        load_community(g, tmp_path / "hop.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(AisingerError, match="bad.json: unreadable JSON"):
        load_community(g, tmp_path / "bad.json")
    doc["data"]["hop_length"] = 512
    doc["model"]["speech_encoder"] = "hubertsoft"  # 256-d too, but another model
    (tmp_path / "soft.json").write_text(json.dumps(doc))
    with pytest.raises(AisingerError, match="soft.json: speech_encoder 'hubertsoft' is not "
                                            "supported"):
        load_community(g, tmp_path / "soft.json")
    del doc["model"]
    (tmp_path / "nomodel.json").write_text(json.dumps(doc))
    with pytest.raises(AisingerError, match="nomodel.json: not a So-VITS-SVC config.json"):
        load_community(g, tmp_path / "nomodel.json")
    # RVC: a config list that does not fit the weights, or none at all
    r = tmp_path / "r.pth"
    export_rvc(_random_model(_rvc_cfg(768, 40000)), r)
    ck = torch.load(r, weights_only=True)
    ck["config"][13] = 64  # upsample_initial_channel
    torch.save(ck, tmp_path / "r_bad.pth")
    with pytest.raises(AisingerError, match=r"r_bad\.pth: weights do not match its config list"):
        load_community(tmp_path / "r_bad.pth")
    del ck["config"]
    ck["model"] = ck.pop("weight")
    torch.save({"weight": ck["model"]}, tmp_path / "r_none.pth")
    with pytest.raises(AisingerError, match="r_none.pth: not a So-VITS-SVC"):
        load_community(tmp_path / "r_none.pth")
    with pytest.raises(AisingerError, match="nothere.pth: model file not found"):
        load_community(tmp_path / "nothere.pth")
    # consent is required and must permit conversion
    with pytest.raises(AisingerError, match="consent"):
        import_voice(r, tmp_path / "v", None)
    train_only = save_consent(self_consent("X", uses=("train",)), tmp_path / "c2.json")
    with pytest.raises(AisingerError, match="does not permit 'convert'"):
        import_voice(r, tmp_path / "v", train_only)
    assert not (tmp_path / "v").exists()


def test_voice_format_families(tmp_path):
    """DDSP voices of format version 1 still load; an unknown family is a clear error."""
    from aisinger.features import FeatureConfig
    from aisinger.nn.ddsp import DdspConfig, build_decoder
    from aisinger.voice.folder import load_voice, save_voice

    m = build_decoder(DdspConfig(hidden=16, layers=1, n_harmonics=4, n_noise_bands=5))
    out = save_voice(tmp_path / "d", m, FeatureConfig())
    doc = json.loads((out / "config.json").read_text())
    assert doc["family"] == "ddsp" and doc["version"] == 2
    doc["version"] = 1
    del doc["family"]
    (out / "config.json").write_text(json.dumps(doc))
    v = load_voice(out)
    assert v.family == "ddsp"
    doc["version"] = 2
    doc["family"] = "diffusion"
    (out / "config.json").write_text(json.dumps(doc))
    with pytest.raises(AisingerError, match=r"config\.json: unknown model family 'diffusion'"):
        load_voice(out)


# --------------------------------------------------------------------------------------------
# content encoder (HuBERT in the fairseq layout) and import -> convert


_TO_FAIRSEQ = [
    ("feature_extractor.conv_layers.0.layer_norm.", "feature_extractor.conv_layers.0.2."),
    (".conv.weight", ".0.weight"),
    ("feature_projection.layer_norm.", "layer_norm."),
    ("feature_projection.projection.", "post_extract_proj."),
    ("encoder.pos_conv_embed.conv.parametrizations.weight.original0", "encoder.pos_conv.0.weight_g"),
    ("encoder.pos_conv_embed.conv.parametrizations.weight.original1", "encoder.pos_conv.0.weight_v"),
    ("encoder.pos_conv_embed.conv.weight_g", "encoder.pos_conv.0.weight_g"),
    ("encoder.pos_conv_embed.conv.weight_v", "encoder.pos_conv.0.weight_v"),
    ("encoder.pos_conv_embed.conv.bias", "encoder.pos_conv.0.bias"),
    (".attention.", ".self_attn."),
    (".layer_norm.", ".self_attn_layer_norm."),
    (".feed_forward.intermediate_dense.", ".fc1."),
    (".feed_forward.output_dense.", ".fc2."),
    ("masked_spec_embed", "mask_emb"),
]


def _fairseq_key(k: str) -> str:
    for a, b in _TO_FAIRSEQ:
        if a == ".layer_norm." and not k.startswith("encoder.layers."):
            continue
        k = k.replace(a, b)
    return k


def _tiny_hubert(path: Path, layers=9, proj=256, seed=0):
    """A random HuBERT (hidden 64) saved as a fairseq checkpoint with config metadata."""
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(seed)
    cfg = HubertConfig(hidden_size=64, num_hidden_layers=layers, num_attention_heads=1,
                       intermediate_size=128, conv_dim=(32,) * 7, num_conv_pos_embeddings=16,
                       num_conv_pos_embedding_groups=4)
    hub = HubertModel(cfg).eval()
    state = {_fairseq_key(k): v for k, v in hub.state_dict().items()}
    fp = torch.nn.Linear(64, proj)
    state["final_proj.weight"], state["final_proj.bias"] = fp.weight.data, fp.bias.data
    state["label_embs_concat"] = torch.zeros(504, proj)
    torch.save({"args": argparse.Namespace(arch="hubert", encoder_layers=layers),
                "model": state}, path)
    return hub, fp


def test_hubert_fairseq_checkpoint_maps_onto_transformers(tmp_path):
    from aisinger.features.hubert import hubert_features

    hub, fp = _tiny_hubert(tmp_path / "hubert_base.pt", layers=9)
    x = (0.1 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)).astype(np.float32)
    with torch.no_grad():
        hs = hub(torch.from_numpy(x)[None], output_hidden_states=True).hidden_states
    ours = hubert_features(x, 16000, tmp_path / "hubert_base.pt", 9, True)
    want = fp(hs[9])[0].detach().numpy()
    assert ours.shape == (49, 256) and _rel_err(ours, want) < 1e-4
    ours6 = hubert_features(x, 16000, tmp_path / "hubert_base.pt", 6, False)
    assert _rel_err(ours6, hs[6][0].numpy()) < 1e-4


def _sing(voice: str, seed: int, n_notes: int = 6) -> np.ndarray:
    from aisinger.lab import VOICES, make_melody, render
    from aisinger.lab.lyrics import make_lyrics

    notes = make_melody(n_notes, seed=seed)
    syl = list(make_lyrics("en", len(notes), np.random.default_rng(seed)).syllables)
    return render(syl, notes, VOICES[voice], sr=SR, seed=seed).audio


@pytest.fixture(scope="module")
def lab_vocal() -> np.ndarray:
    return _sing("flite-rms", seed=3)


def test_import_and_convert_lab_vocal(tmp_path, consent, lab_vocal, monkeypatch):
    """RVC v1 (with an .index) and So-VITS 4.0 voices: import -> convert a lab vocal; exact
    length, finite, deterministic, chunking seamless; the CLI path too."""
    import faiss

    from aisinger.convert import vits as convert_vits
    from aisinger.voice.community import export_rvc, export_sovits
    from aisinger.convert import convert
    from aisinger.voice.folder import load_voice

    torch.set_num_threads(1)
    models = tmp_path / "models"
    (models / "contentvec-base").mkdir(parents=True)
    _tiny_hubert(models / "contentvec-base" / "hubert_base.pt", layers=9)
    monkeypatch.setenv("AISINGER_MODELS_DIR", str(models))

    export_rvc(_random_model(_rvc_cfg(256, 40000)), tmp_path / "rvc.pth")
    vecs = np.random.default_rng(0).standard_normal((300, 256)).astype(np.float32)
    idx = faiss.IndexFlatL2(256)
    idx.add(vecs)
    faiss.write_index(idx, str(tmp_path / "added.index"))
    cli = subprocess.run([sys.executable, "-m", "aisinger", "voice", "import",
                          str(tmp_path / "rvc.pth"), "--index", str(tmp_path / "added.index"),
                          "--consent", str(consent), "-o", str(tmp_path / "rvc_voice")],
                         capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr
    no_consent = subprocess.run([sys.executable, "-m", "aisinger", "voice", "import",
                                 str(tmp_path / "rvc.pth"), "-o", str(tmp_path / "x")],
                                capture_output=True, text=True, timeout=300)
    assert no_consent.returncode == 2 and no_consent.stderr.startswith("error: no consent")

    x = lab_vocal
    rvc = load_voice(tmp_path / "rvc_voice")
    y, sr = convert(rvc, x, SR, transpose=2.0, f0_method="dsp", retrieval=0.5)
    assert sr == 40000 and y.shape[0] == round(x.shape[0] * 40000 / SR)
    assert np.all(np.isfinite(y)) and np.abs(y).max() > 1e-4
    y2, sr2 = convert(rvc, x, SR, f0_method="dsp", retrieval=0.5, transpose=2.0, out_sr=22050)
    assert sr2 == 22050 and y2.shape[0] == round(x.shape[0] * 22050 / SR)
    y3, _ = convert(load_voice(tmp_path / "rvc_voice"), x, SR, transpose=2.0, f0_method="dsp",
                    retrieval=0.5)
    assert np.array_equal(y, y3)  # deterministic

    export_sovits(_random_model(_sovits_cfg(256)), tmp_path / "G_5.pth",
                  tmp_path / "config.json")
    from aisinger.voice.community import import_voice

    sv = import_voice(tmp_path / "G_5.pth", tmp_path / "sovits_voice", consent)
    sovits = load_voice(sv)
    ys, srs = convert(sovits, x, SR, f0_method="dsp")
    assert srs == 44100 and ys.shape[0] == x.shape[0] and np.abs(ys).max() > 1e-4
    # chunked synthesis (1 s chunks) stays close to one long chunk: no seams
    monkeypatch.setattr(convert_vits, "CHUNK_S", 1.0)
    yc, _ = convert(sovits, x, SR, f0_method="dsp")
    assert np.abs(yc - ys).max() < 0.1 * np.abs(ys).max()


@pytest.mark.slow
def test_import_then_cover_lab_song(tmp_path, consent, monkeypatch):
    """An imported RVC voice makes a finished cover of a lab song: same layout and length as
    the song, true peak <= -1 dBTP, labelled."""
    from aisinger.io import audio
    from aisinger.voice.community import export_rvc, import_voice
    from aisinger.pipelines.cover import CoverOptions, cover
    from aisinger.label import detect_file
    from aisinger.lab import VOICES, accompany, make_melody, mix, render
    from aisinger.lab.lyrics import make_lyrics
    from aisinger.dsp.peak import true_peak_dbtp

    torch.set_num_threads(1)
    models = tmp_path / "models"
    (models / "contentvec-base").mkdir(parents=True)
    _tiny_hubert(models / "contentvec-base" / "hubert_base.pt", layers=9)
    monkeypatch.setenv("AISINGER_MODELS_DIR", str(models))
    export_rvc(_random_model(_rvc_cfg(256, 40000)), tmp_path / "rvc.pth")
    voice = import_voice(tmp_path / "rvc.pth", tmp_path / "voice", consent)

    notes = make_melody(8, seed=7)
    syl = list(make_lyrics("en", len(notes), np.random.default_rng(7)).syllables)
    vocal = render(syl, notes, VOICES["flite-rms"], sr=SR, seed=7).audio
    acc = accompany(notes, sr=SR, seconds=len(vocal) / SR, seed=7)
    mixture, _, _ = mix(vocal, acc, vocal_to_acc_db=2.0)
    audio.save(tmp_path / "song.wav", mixture, SR)
    out = tmp_path / "cover.flac"
    r = cover(tmp_path / "song.wav", voice, out, CoverOptions(stems=True, f0_method="dsp"))
    y, sr = audio.load(out)
    assert sr == SR and y.shape == mixture.shape
    assert true_peak_dbtp(y) <= -1.0 + 1e-3
    assert detect_file(out).exit_code == 0
    conv, _ = audio.load(r.stems["vocals_converted"])
    assert conv.shape[-1] == mixture.shape[-1] and np.abs(conv).max() > 1e-4


# --------------------------------------------------------------------------------------------
# training (a few CPU steps; the GPU is used when present)


def test_vits_training_few_steps_and_fine_tune(tmp_path, monkeypatch):
    from aisinger.io import audio
    from aisinger.voice.community import export_sovits
    from aisinger.nn.vits import unfold_weight_norm
    from aisinger.nn.vits_train import MultiPeriodDiscriminator, PosteriorEncoder
    from aisinger.voice.train_vits import VitsTrainConfig, train_vits
    from aisinger.voice.folder import load_voice

    torch.set_num_threads(1)
    models = tmp_path / "models"
    (models / "contentvec-base").mkdir(parents=True)
    _tiny_hubert(models / "contentvec-base" / "hubert_base.pt", layers=9)
    monkeypatch.setenv("AISINGER_MODELS_DIR", str(models))
    ds = tmp_path / "ds"
    audio.save(ds / "clips" / "c0.wav", _sing("flite-slt", seed=1, n_notes=4), SR)
    save_consent(self_consent("Lab SLT"), ds / "consent.json")
    cfg = _sovits_cfg(256, vol=True, f0_pred=True, n_speakers=1)
    small = dict(content_dim=256, inter_channels=16, hidden_channels=32, filter_channels=64,
                 n_layers=2, n_flows=2, flow_layers=2, gin_channels=16,
                 decoder=dict(upsample_initial_channel=32, resblock_kernel_sizes=(3, 7),
                              resblock_dilation_sizes=((1, 3, 5), (1, 3, 5))))
    tc = VitsTrainConfig(steps=3, batch_size=2, window_frames=24, segment_frames=8,
                         learning_rate=2e-4, model=small, disc_width=1 / 16)
    r = train_vits(ds, tmp_path / "voice", tc, seed=0)
    assert r.steps == 3 and all(np.isfinite(v) for v in r.losses.values())
    assert r.losses["mel"] > 0 and r.losses["kl"] != 0 and r.losses["f0"] > 0
    voice = load_voice(r.voice_dir)
    assert voice.family == "vits" and voice.meta["source"] == "aisinger-vits-sovits"
    assert (r.voice_dir / "training" / "discriminator.safetensors").is_file()

    # fine-tuning from a community G_0 / D_0: with learning rate 0 the weights stay the base's
    base = _random_model(cfg, seed=4)
    enc_q = PosteriorEncoder(cfg.spec_channels, 16, 32, 16)
    export_sovits(base, tmp_path / "G_0.pth", tmp_path / "config.json")
    ck = torch.load(tmp_path / "G_0.pth", weights_only=True)
    enc_names = [k[:-7] for k in enc_q.state_dict() if k.startswith("enc.") and
                 k.endswith(".weight")]
    ck["model"].update({f"enc_q.{k}": v for k, v in
                        unfold_weight_norm(enc_q.state_dict(), enc_names).items()})
    torch.save(ck, tmp_path / "G_0.pth")
    disc = MultiPeriodDiscriminator(1 / 16)
    torch.save({"model": disc.state_dict(), "iteration": 0}, tmp_path / "D_0.pth")
    r2 = train_vits(ds, tmp_path / "tuned", dataclasses_replace(tc, learning_rate=0.0, steps=1),
                    base=tmp_path / "G_0.pth", base_d=tmp_path / "D_0.pth", seed=0)
    tuned = load_voice(r2.voice_dir).model.state_dict()
    for k, v in base.state_dict().items():
        assert torch.allclose(tuned[k], v, atol=1e-5), k


def dataclasses_replace(obj, **kw):
    import dataclasses

    return dataclasses.replace(obj, **kw)


def test_import_refuses_absurd_sizes_before_allocating(tmp_path, consent):
    """#15 item 5: an RVC .pth whose config asks for filter_channels 4e8 or
    upsample_initial_channel 3e6 (or sizes the weights do not have) is refused with an error
    naming the file, before any module of that size is built."""
    import resource

    from aisinger.voice.community import export_rvc, import_voice

    good = tmp_path / "good.pth"
    export_rvc(_random_model(_rvc_cfg(256, 40000)), good)
    doc = torch.load(good, weights_only=True)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for index, value, name in ((4, 400_000_000, "filter_channels"),
                               (13, 3_000_000, "upsample_initial_channel"),
                               (4, 8000, "filter_channels")):  # in bounds, not the file's
        bad = tmp_path / f"bad_{name}_{value}.pth"
        conf = list(doc["config"])
        conf[index] = value
        torch.save({**doc, "config": conf}, bad)
        with pytest.raises(AisingerError, match=str(bad.name)) as err:
            import_voice(bad, tmp_path / f"v_{value}", consent)
        assert name in str(err.value) or "do not match" in str(err.value)
        assert not (tmp_path / f"v_{value}").exists()
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 300_000  # KB
    # a generator without its attention weights: the error names the file
    state = {k: v for k, v in doc["weight"].items() if "emb_rel_k" not in k}
    torch.save({**doc, "weight": state}, tmp_path / "noattn.pth")
    with pytest.raises(AisingerError, match="noattn.pth: missing enc_p"):
        import_voice(tmp_path / "noattn.pth", tmp_path / "v2", consent)
