"""The nsf voice model (neural source-filter decoder) and its base model.

Tiny models, a few steps: shapes, determinism, a fixed-seed output, train -> resume ->
convert, base-model hash and config checks.  The dataset is the lab voice flite-slt singing
(as in test_voice_model.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from aisinger.errors import AisingerError

from lab_data import SR, kill_after_checkpoint, make_dataset, sing  # tests/voice/lab_data.py

TINY = {"generator": "hifigan", "hidden": 32, "layers": 2, "kernel": 3, "latent": 32,
        "upsample_initial_channel": 32, "harmonics": 4}
TINY_ISTFT = {**TINY, "generator": "istft", "istft_n_fft": 480}


def _sing(voice: str, seed: int, n_notes: int = 6) -> np.ndarray:
    return sing(voice, seed, n_notes)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("nsf-dataset"), n_notes=6)


def _config(steps: int, **kw):
    from aisinger.voice.train_nsf import NsfTrainConfig

    base = dict(steps=steps, batch_size=2, segment_s=0.3, checkpoint_every=3,
                validate_every=1000, model=TINY, disc_width=0.0625, adversarial_from=4,
                init=None)
    base.update(kw)
    return NsfTrainConfig(**base)


def _frames(t: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    content = torch.randn(1, t, 512, generator=g)
    f0 = torch.full((1, t), 220.0)
    voiced = torch.ones(1, t)
    voiced[:, t // 2:t // 2 + 5] = 0
    loud = torch.full((1, t), -20.0)
    return content, f0, voiced, loud


@pytest.mark.parametrize("model", [TINY, TINY_ISTFT])
def test_shapes_determinism_and_fixed_seed_output(model):
    from aisinger.nn.nsf_voice import NsfVoice, NsfVoiceConfig

    torch.manual_seed(0)
    m = NsfVoice(NsfVoiceConfig.from_dict(model)).eval()
    x = _frames(30)
    with torch.no_grad():
        y = m(*x)
        y2 = m(*x)
        gen = torch.Generator().manual_seed(1)
        y3 = m(*x, generator=gen)
    assert y.shape == (1, 30 * 240) and torch.isfinite(y).all()
    assert torch.equal(y, y2)  # no generator: deterministic
    assert not torch.equal(y, y3)  # the generator adds source noise
    # same seed, same weights, same output (a change to the model code shows up here)
    torch.manual_seed(0)
    m2 = NsfVoice(NsfVoiceConfig.from_dict(model)).eval()
    with torch.no_grad():
        assert torch.equal(m2(*x), y)
    assert float(y.abs().max()) > 0


def test_config_checks():
    from aisinger.nn.nsf_voice import NsfVoiceConfig

    assert NsfVoiceConfig().generator == "istft"  # the default generator (docs/voice-model.md)
    assert NsfVoiceConfig.from_dict({"sample_rate": 32000}).hop == 320  # istft: any hop
    hifigan = {"generator": "hifigan"}
    with pytest.raises(ValueError, match="multiply to"):
        NsfVoiceConfig.from_dict({**hifigan, "sample_rate": 32000})
    cfg = NsfVoiceConfig.from_dict({**hifigan, "sample_rate": 32000,
                                    "upsample_rates": [5, 4, 4, 2, 2],
                                    "upsample_kernel_sizes": [11, 8, 8, 4, 4]})
    assert cfg.hop == 320
    with pytest.raises(ValueError, match="unknown model config keys"):
        NsfVoiceConfig.from_dict({"nope": 1})
    with pytest.raises(ValueError, match="must be even"):
        NsfVoiceConfig.from_dict({**hifigan, "upsample_kernel_sizes": [10, 8, 7, 4, 4]})


@pytest.mark.parametrize("model", [TINY, TINY_ISTFT])
def test_chunked_synthesis_matches_whole(monkeypatch, model):
    """Chunks with context margins + crossfades ≈ one pass over the whole signal (the source
    noise is position-seeded, so both see the same noise)."""
    from aisinger.convert.nsf import synthesize_nsf
    from aisinger.nn.nsf_voice import NsfVoice, NsfVoiceConfig

    torch.manual_seed(0)
    m = NsfVoice(NsfVoiceConfig.from_dict(model)).eval()
    c, f0, v, loud = (a[0].numpy() for a in _frames(300))
    f0 = (200 + 50 * np.sin(np.arange(300) / 20)).astype(np.float32)
    whole = synthesize_nsf(m, c, f0, v, loud, 300 * 240, chunk_frames=10_000)
    # 300 = 4 x 70 + 20 and 300 = 3 x 99 + 3: a tail shorter than the crossfade (a 3-minute
    # cover hit that) joins the previous chunk
    for chunk in (70, 99):
        chunked = synthesize_nsf(m, c, f0, v, loud, 300 * 240, chunk_frames=chunk)
        assert whole.shape == chunked.shape == (300 * 240,)
        err = np.sqrt(np.mean((whole - chunked) ** 2)) / np.sqrt(np.mean(whole ** 2))
        assert err < 1e-4, err  # position-seeded source noise: chunks equal the whole signal


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    from aisinger.voice.train_nsf import train_nsf

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("nsf-voice") / "slt"
    return out, train_nsf(dataset, out, _config(6), seed=0)


def _weights(voice_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(voice_dir / "model.safetensors"))


def test_train_resume_convert_round_trip(dataset, trained, tmp_path):
    from aisinger.convert import convert
    from aisinger.voice.train_nsf import train_nsf
    from aisinger.voice import load_voice

    voice_dir, result = trained
    assert result.step == 6 and result.finished
    voice = load_voice(voice_dir)
    assert voice.family == "nsf" and voice.sample_rate == 24000
    assert json.loads((voice_dir / "config.json").read_text())["family"] == "nsf"
    # stop at 3, resume to 6: identical to the straight run (adversarial from step 4)
    out = tmp_path / "resumed"
    assert train_nsf(dataset, out, _config(3), seed=0).step == 3
    assert train_nsf(dataset, out, _config(6), seed=0).step == 6
    a, b = _weights(voice_dir), _weights(out)
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(AisingerError, match="another seed, model config or initialisation"):
        train_nsf(dataset, out, _config(7), seed=1)
    src = _sing("flite-rms", seed=7, n_notes=4)
    y, sr = convert(voice, src, SR, transpose=12)
    assert sr == 24000 and y.shape[0] == round(src.shape[0] * sr / SR) and np.isfinite(y).all()


def test_frozen_parameters_keep_their_start(dataset, trained, tmp_path):
    """``freeze``: the named generator parameters stay at the initial weights (here the voice
    trained above), the rest trains; a prefix naming nothing is a clear error."""
    from aisinger.voice.train_nsf import train_nsf

    start = _weights(trained[0])
    out = tmp_path / "frozen"
    train_nsf(dataset, out, _config(2, init=str(trained[0]), adversarial_from=-1,
                                    freeze=["net.content_proj", "net.blocks.0."]), seed=0)
    after = _weights(out)
    frozen = [k for k in start if k.startswith(("net.content_proj", "net.blocks.0."))]
    assert frozen and all(torch.equal(start[k], after[k]) for k in frozen)
    assert not torch.equal(start["net.head.weight"], after["net.head.weight"])
    with pytest.raises(AisingerError, match="freeze 'net.nothing' names no parameter"):
        train_nsf(dataset, tmp_path / "bad", _config(1, freeze=["net.nothing"]), seed=0)


def test_base_file_hash_and_config_checks(dataset, trained, tmp_path, monkeypatch):
    import aisinger.voice.base_model as bm
    from aisinger.io.fileio import sha256_file
    from aisinger.nn.nsf_voice import NsfVoiceConfig
    from aisinger.voice.train_nsf import build_training_model, train_nsf

    cfg = NsfVoiceConfig.from_dict(TINY)
    torch.manual_seed(3)
    model = build_training_model(cfg, 0.0625)
    base = bm.save_base(tmp_path / "base.safetensors", model, cfg, 0.0625, {"test": True})
    digest = sha256_file(base)
    # a base file as init: fine-tuning starts from its weights
    out = tmp_path / "ft"
    train_nsf(dataset, out, _config(1, init=str(base), adversarial_from=-1), seed=0)
    card = json.loads((out / "model_card.json").read_text())
    assert card["training"]["init"].endswith(f"sha256:{digest[:16]}")
    # the committed base ("base"): missing and tampered files name the file and the hash
    monkeypatch.setattr(bm, "committed_base", lambda: (tmp_path / "gone.safetensors", digest))
    with pytest.raises(AisingerError, match=f"gone.safetensors: base model missing "
                                            f"\\(expected sha256 {digest}\\)"):
        train_nsf(dataset, tmp_path / "a", _config(1, init="base"), seed=0)
    bad = tmp_path / "tampered.safetensors"
    data = base.read_bytes()
    bad.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit of the last weight flipped
    monkeypatch.setattr(bm, "committed_base", lambda: (bad, digest))
    with pytest.raises(AisingerError, match=f"tampered.safetensors: base model does not match "
                                            f"its pinned hash \\(expected sha256 {digest}"):
        train_nsf(dataset, tmp_path / "b", _config(1, init="base"), seed=0)
    # a base trained with another model config
    with pytest.raises(AisingerError, match="base model config does not match this training "
                                            "\\(hidden: base 32 vs 48"):
        train_nsf(dataset, tmp_path / "c", _config(1, init=str(base), model={**TINY, "hidden": 48}),
                  seed=0)
    # no model overrides: the voice takes the base's own config (not the code's defaults)
    out = tmp_path / "inherit"
    train_nsf(dataset, out, _config(1, init=str(base), model={}, adversarial_from=-1), seed=0)
    stored = json.loads((out / "config.json").read_text())["model"]
    assert stored == json.loads(json.dumps(cfg.to_dict()))


def test_stored_configs_keep_their_behaviour():
    """A voice written before ``istft_excitation`` existed filtered the source phase: it loads
    that way, while new configs get the current default."""
    from aisinger.nn.nsf_voice import NsfVoiceConfig

    old = {k: v for k, v in NsfVoiceConfig().to_dict().items() if k != "istft_excitation"}
    assert NsfVoiceConfig.from_stored(old).istft_excitation == "phase"
    assert NsfVoiceConfig.from_dict({}).istft_excitation == "spectrum"
    with pytest.raises(ValueError, match="unknown istft_excitation"):
        NsfVoiceConfig.from_dict({"istft_excitation": "magic"})


def test_base_without_upper_harmonics_grows_into_them(tmp_path):
    """A base written before ``source_max_hz`` (stored without it: 0, sines only) starts a
    training that has the upper harmonics on: the new gain starts at 0, so the grown model
    sounds exactly like the base until training moves it; other config differences still
    fail, naming the field."""
    import aisinger.voice.base_model as bm
    from aisinger.nn.nsf_voice import NsfVoiceConfig
    from aisinger.voice.train_nsf import build_training_model

    old_cfg = NsfVoiceConfig.from_dict({**TINY_ISTFT, "source_max_hz": 0.0})
    assert NsfVoiceConfig.from_stored({k: v for k, v in old_cfg.to_dict().items()
                                       if k != "source_max_hz"}).source_max_hz == 0.0
    torch.manual_seed(5)
    old = build_training_model(old_cfg, 0.0625)
    with torch.no_grad():
        old["g"].m_source.weight.copy_(torch.tensor([[0.7, -0.5, 0.3, -0.2]]))
    base = bm.save_base(tmp_path / "base.safetensors", old, old_cfg, 0.0625, {"test": True})
    assert NsfVoiceConfig.from_dict(TINY_ISTFT).source_max_hz == 0.0  # off by default
    new_cfg = NsfVoiceConfig.from_dict({**TINY_ISTFT, "source_max_hz": 8000.0})
    grown = build_training_model(new_cfg, 0.0625)
    bm.init_from(grown, str(base), new_cfg, 0.0625)
    assert float(grown["g"].upper_gain) == 0.0
    frames = _frames(40)
    old.eval()
    grown.eval()
    with torch.no_grad():
        assert torch.equal(grown["g"](*frames), old["g"](*frames))
        grown["g"].upper_gain.fill_(0.5)  # and the gain does reach the output
        assert not torch.allclose(grown["g"](*frames), old["g"](*frames))
    wider = NsfVoiceConfig.from_dict({**TINY_ISTFT, "hidden": 48})
    with pytest.raises(AisingerError, match="hidden: base 32 vs 48"):
        bm.init_from(build_training_model(wider, 0.0625), str(base), wider, 0.0625)


def test_no_committed_base_is_a_clear_error(dataset, tmp_path, monkeypatch):
    from aisinger import assets
    from aisinger.voice.base_model import BASE_ASSET
    from aisinger.voice.train_nsf import train_nsf

    monkeypatch.delitem(assets.REGISTRY, BASE_ASSET, raising=False)
    with pytest.raises(AisingerError, match="no nsf base model is committed"):
        train_nsf(dataset, tmp_path / "v", _config(1, init="base"), seed=0)


def test_augment_shifts_pitch():
    from aisinger.voice.base_recipe import augment_clip
    from aisinger.features import PitchConfig, estimate_f0

    x = _sing("flite-slt", seed=3, n_notes=4)
    y = augment_clip(x, SR, 4.0)
    assert y.shape == x.shape and np.isfinite(y).all()
    fx = estimate_f0(x, SR, PitchConfig(method="dsp"))
    fy = estimate_f0(y, SR, PitchConfig(method="dsp"))
    both = (fx > 0) & (fy > 0)
    assert both.sum() > 50
    assert abs(np.median(1200 * np.log2(fy[both] / fx[both])) - 400) < 50


def test_base_recipe_keeps_every_stage(tmp_path):
    """A base resumed on another corpus or schedule keeps its whole recipe, in order; resuming
    the same stage updates it instead of adding one."""
    import json

    from aisinger.voice.base_recipe import STAGES_FILE, _record_stage

    def stage(corpus, steps, adv):
        return {"corpus": corpus, "augment": [-4.0, 4.0], "augment_share": 1.0, "seed": 0,
                "clips": 10, "steps": steps, "minutes": steps / 100, "voices": ["a"],
                "train_config": {"adversarial_from": adv}}

    _record_stage(tmp_path, stage("c2", 100, 50))
    _record_stage(tmp_path, stage("c2", 200, 50))  # the same stage, resumed
    stages = _record_stage(tmp_path, stage("c3", 500, 400))
    assert [(s["corpus"], s["steps"]) for s in stages] == [("c2", 200), ("c3", 500)]
    assert json.loads((tmp_path / STAGES_FILE).read_text()) == stages


def test_base_recipe_takes_several_corpora(tmp_path):
    from aisinger.voice.base_recipe import corpora_clips

    def man(voices):
        clips = [{"voice": v, "split": sp, "audio": f"voices/{v}/{sp}-{i}.wav"}
                 for v in voices for sp in ("train", "test") for i in range(2)]
        return {"voices": {v: {} for v in voices}, "clips": clips}

    a, b = tmp_path / "a", tmp_path / "b"
    ma, mb = man(["x", "y"]), man(["z"])
    train, val, used = corpora_clips([a, b], [ma, mb])
    assert used == ["x", "y", "z"]
    assert train == [a / f"voices/{v}/train-{i}.wav" for v in "xy" for i in range(2)] + \
        [b / f"voices/z/train-{i}.wav" for i in range(2)]
    assert val == [a / "voices/x/test-0.wav", a / "voices/y/test-0.wav", b / "voices/z/test-0.wav"]
    train, _, used = corpora_clips([a, b], [ma, mb], voices=["z", "x"])
    assert used == ["x", "z"] and len(train) == 4
    with pytest.raises(AisingerError, match="no lab corpus has voice 'w'"):
        corpora_clips([a, b], [ma, mb], voices=["x", "w"])


def test_kill_9_and_resume(dataset, tmp_path):
    """SIGKILL an nsf training process after its first checkpoint; rerunning the same call
    continues from that checkpoint (not from step 0) and finishes (issue 16: kill -9 tested)."""
    from safetensors import safe_open

    from aisinger.voice.train_nsf import train_nsf

    out = tmp_path / "killed"
    cfg = _config(100_000, checkpoint_every=2)
    code = ("import torch; torch.set_num_threads(1); "
            "from aisinger.voice.train_nsf import NsfTrainConfig, train_nsf; "
            f"train_nsf({str(dataset)!r}, {str(out)!r}, NsfTrainConfig(**{cfg.to_dict()!r}), "
            "seed=0)")
    ckpt = out / "training" / "checkpoint.safetensors"
    kill_after_checkpoint(code, ckpt)
    with safe_open(str(ckpt), "pt") as f:
        killed_at = json.loads(f.metadata()["state"])["step"]
    assert 2 <= killed_at < 100_000
    result = train_nsf(dataset, out, _config(killed_at + 3, checkpoint_every=2), seed=0)
    assert result.step == killed_at + 3
    with safe_open(str(ckpt), "pt") as f:
        runs = json.loads(f.metadata()["state"])["runs"]
    assert [r["start_step"] for r in runs] == [0, killed_at]  # continued, not restarted


def test_committed_base_is_the_default_start(dataset, tmp_path):
    """The shipped base verifies against its pinned hash and a default nsf training starts
    from it, in its own model config."""
    from aisinger import assets
    from aisinger.voice import DEFAULT_FAMILY
    from aisinger.voice.base_model import BASE_ASSET, base_model_config
    from aisinger.voice.train_nsf import NsfTrainConfig, train_nsf

    assert DEFAULT_FAMILY == "nsf" and NsfTrainConfig().init == "base"
    (check,) = assets.verify([BASE_ASSET])
    assert check.ok, check.message
    out = tmp_path / "ft"
    train_nsf(dataset, out, NsfTrainConfig(steps=1, batch_size=1, segment_s=0.3,
                                           validate_every=1000), seed=0)
    card = json.loads((out / "model_card.json").read_text())
    digest = assets.get(BASE_ASSET).files[0].sha256
    assert card["training"]["init"].endswith(f"nsf-base.safetensors sha256:{digest[:16]}")
    assert json.loads((out / "config.json").read_text())["model"] == base_model_config("base")
