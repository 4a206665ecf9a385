"""Audio I/O: formats, channel rules, resampling, atomic writes and every bad-input case."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from aisinger.io import audio
from aisinger.errors import AudioError
from conftest import SR, tone


def _write(path: Path, data: np.ndarray, sr: int = SR, subtype: str = "FLOAT") -> Path:
    sf.write(str(path), data.T if data.ndim > 1 else data, sr, subtype=subtype)
    return path


@pytest.mark.parametrize("ext", [".wav", ".flac", ".mp3", ".ogg"])
def test_roundtrip_formats(tmp_path, ext):
    x = np.stack([tone(220), tone(330)]) * 0.5
    out = audio.save(tmp_path / f"a{ext}", x, SR)
    y, sr = audio.load(out)
    assert sr == SR and y.shape[0] == 2 and y.dtype == np.float32
    if ext in (".wav", ".flac"):
        assert y.shape == x.shape and np.max(np.abs(y - x)) < 1e-4
    else:  # lossy: length within an encoder frame or two, waveform correlated
        assert abs(y.shape[1] - x.shape[1]) < 4096
        # best alignment within the encoder delay, then the waveforms must agree closely
        seg = x[0, 10000:20000]
        best = max(np.corrcoef(y[0, 10000 + d:20000 + d], seg)[0, 1] for d in range(0, 3000, 1))
        assert best > 0.99


def test_m4a_read_through_ffmpeg(tmp_path):
    wav = audio.save(tmp_path / "a.wav", tone(440, 2.0), SR)
    m4a = tmp_path / "a.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "aac", "-b:a", "128k",
                    str(m4a)], check=True)
    y, sr = audio.load(m4a, mono=True)
    assert sr == SR and y.ndim == 1 and abs(len(y) - 2 * SR) < 4096
    ratio = np.sqrt(np.mean(y ** 2)) / np.sqrt(np.mean(tone(440, 2.0) ** 2))
    assert 0.9 < ratio < 1.1  # AAC keeps the level of a pure tone


def test_load_resample_and_mono(tmp_path):
    p = _write(tmp_path / "s.wav", np.stack([tone(220), tone(220) * 0.0]))
    y, sr = audio.load(p, sr=16000, mono=True)
    assert sr == 16000 and y.ndim == 1 and abs(len(y) - 16000) <= 1
    assert np.isclose(np.max(np.abs(y[1000:-1000])), 0.25, atol=0.01)  # mean of the 2 channels


def test_51_downmix_drops_lfe():
    n = 1000
    x = np.zeros((6, n), np.float32)
    x[3] = 1.0  # LFE only
    assert np.allclose(audio.to_mono(x), 0)
    x[2] = 1.0  # centre
    st = audio.to_stereo(x)
    assert st.shape == (2, n) and np.allclose(st, audio.ITU_SURROUND_GAIN)


def test_save_is_atomic_and_never_leaves_temp(tmp_path, monkeypatch):
    target = tmp_path / "out.wav"
    audio.save(target, tone(), SR)
    before = target.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(sf, "write", boom)
    with pytest.raises(OSError):
        audio.save(target, tone(330), SR)
    assert target.read_bytes() == before  # old file intact
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]  # no temp left behind


def test_save_rejects_samples_channels_order_and_unknown_ext(tmp_path):
    with pytest.raises(AudioError, match="channels, samples"):
        audio.save(tmp_path / "x.wav", np.zeros((1000, 2), np.float32), SR)
    with pytest.raises(AudioError, match="cannot write"):
        audio.save(tmp_path / "x.xyz", tone(), SR)


def test_output_over_input_refused(tmp_path):
    p = audio.save(tmp_path / "in.wav", tone(), SR)
    with pytest.raises(AudioError, match="overwrite the input"):
        audio.check_output_not_input(tmp_path / "." / "in.wav", p)


# --- bad input: each case gives a one-line AudioError naming the file -------------------------


def _bad_inputs(d: Path) -> dict[str, tuple[Path, str]]:
    cases: dict[str, tuple[Path, str]] = {}
    cases["missing"] = (d / "nope.wav", "not found")
    txt = d / "text.wav"
    txt.write_text("this is not audio at all\n" * 20)
    cases["not_audio"] = (txt, "not an audio file")
    good = _write(d / "good.wav", tone(220, 2.0), subtype="PCM_16")
    data = good.read_bytes()
    trunc = d / "trunc.wav"
    trunc.write_bytes(data[: len(data) // 2])
    cases["truncated_wav"] = (trunc, "truncated")
    flac = _write(d / "good.flac", tone(220, 2.0), subtype="PCM_16")
    fd = flac.read_bytes()
    (d / "trunc.flac").write_bytes(fd[: len(fd) // 2])
    cases["truncated_flac"] = (d / "trunc.flac", "truncated")
    empty = d / "empty.wav"
    empty.write_bytes(b"")
    cases["zero_bytes"] = (empty, "empty file")
    cases["zero_samples"] = (_write(d / "nosamples.wav", np.zeros(0, np.float32)), "zero-length")
    nan = tone()
    nan[100] = np.nan
    cases["nan"] = (_write(d / "nan.wav", nan), "NaN")
    inf = tone()
    inf[5] = np.inf
    cases["inf"] = (_write(d / "inf.wav", inf), "NaN or infinite")
    cases["sr_low"] = (_write(d / "low.wav", tone(sr=4000), sr=4000), "sample rate 4000")
    cases["sr_high"] = (_write(d / "high.wav", tone(sr=400000, seconds=0.1), sr=400000),
                        "sample rate 400000")
    cases["channels"] = (_write(d / "nine.wav", np.zeros((9, 1000), np.float32)), "9 channels")
    cases["folder"] = (d, "is a folder")
    return cases


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    return _bad_inputs(tmp_path_factory.mktemp("bad"))


CASES = ["missing", "not_audio", "truncated_wav", "truncated_flac", "zero_bytes", "zero_samples",
         "nan", "inf", "sr_low", "sr_high", "channels", "folder"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_library(bad_inputs, case):
    path, expect = bad_inputs[case]
    before = path.read_bytes() if path.is_file() else None
    with pytest.raises(AudioError) as err:
        audio.load(path)
    msg = str(err.value)
    assert expect in msg and str(path) in msg and "\n" not in msg
    if before is not None:
        assert path.read_bytes() == before  # input untouched


def test_too_long(tmp_path, monkeypatch):
    p = _write(tmp_path / "long.wav", tone(seconds=3.0))
    with pytest.raises(AudioError, match="limit is 0.0 min"):
        audio.load(p, max_seconds=2.0)
    monkeypatch.setenv("AISINGER_MAX_MINUTES", "0.01")  # 0.6 s
    with pytest.raises(AudioError, match="AISINGER_MAX_MINUTES"):
        audio.load(p)


@pytest.mark.parametrize("case", CASES)
def test_bad_input_cli_exit_code(bad_inputs, case):
    """`aisinger info BAD` prints one line `error: <file>: <problem>` and exits 2."""
    path, expect = bad_inputs[case]
    proc = subprocess.run([sys.executable, "-m", "aisinger", "info", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0]


def test_too_long_cli(tmp_path):
    p = _write(tmp_path / "long.wav", tone(seconds=3.0))
    env = {**os.environ, "AISINGER_MAX_MINUTES": "0.01"}
    proc = subprocess.run([sys.executable, "-m", "aisinger", "info", str(p)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and "limit" in proc.stderr
