"""Live (streaming) conversion: blocks in, blocks out (:mod:`aisinger.live`).

A tiny nsf voice trained for a few steps on the lab voice flite-slt singing (as
tests/voice/test_nsf_voice.py) is streamed with lab singing of another voice; the content
encoder is the shipped causal student.  Checks: block length and rate, silence then sound
aligned with the input, no click at block joins, two block sizes agree, reset, bad blocks and
bad settings give one-line errors, the CLI writes one labelled file atomically, the student
streams exactly as it runs on a whole signal.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from aisinger.errors import AisingerError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "voice"))
from lab_data import SR, make_dataset, sing  # noqa: E402  (tests/voice/lab_data.py)

TINY_ISTFT = {"generator": "istft", "hidden": 32, "layers": 2, "kernel": 3, "latent": 32,
              "harmonics": 4, "istft_n_fft": 480}


@pytest.fixture(scope="module")
def voice(tmp_path_factory) -> Path:
    from aisinger.voice.train_nsf import NsfTrainConfig, train_nsf

    root = tmp_path_factory.mktemp("live-voice")
    ds = make_dataset(root / "ds", n_notes=6)
    torch.set_num_threads(1)
    cfg = NsfTrainConfig(steps=6, batch_size=2, segment_s=0.3, checkpoint_every=3,
                         validate_every=1000, model=TINY_ISTFT, disc_width=0.0625,
                         adversarial_from=4, init=None)
    train_nsf(ds, root / "v", cfg, seed=0)
    return root / "v"


@pytest.fixture(scope="module")
def singing() -> np.ndarray:
    """2.5 s of flite-rms singing at 24 kHz (the tiny voice's rate)."""
    from aisinger.io.audio import resample

    return resample(sing("flite-rms", seed=3, n_notes=5), SR, 24000)[:60000]


@pytest.fixture(scope="module")
def conv(voice):
    from aisinger.live import StreamingConverter

    return StreamingConverter(voice, block_ms=40)


def _stream(conv, x: np.ndarray) -> list[np.ndarray]:
    conv.reset()
    bs = conv.block_samples
    return [conv.process(x[i:i + bs]) for i in range(0, x.shape[0] - bs + 1, bs)]


def test_blocks_have_the_block_length_at_the_voice_rate(conv, singing):
    from aisinger.live import LOOKAHEAD_MS

    assert conv.sample_rate == 24000
    assert conv.block_samples == 960  # 40 ms
    assert conv.latency_ms == 40 + LOOKAHEAD_MS
    out = _stream(conv, singing)
    assert all(o.shape == (960,) and o.dtype == np.float32 and np.isfinite(o).all()
               for o in out)
    assert np.all(out[0] == 0)  # the first block is still inside the lookahead: silence
    assert max(float(np.abs(o).max()) for o in out) > 1e-3


def _corr(a: np.ndarray, b: np.ndarray, shift: int = 0) -> float:
    a, b = a[max(0, shift):a.shape[0] + min(0, shift)], b[max(0, -shift):b.shape[0] + min(0, -shift)]
    return float(np.corrcoef(a, b)[0, 1])


def test_stream_equals_the_whole_signal_conversion_aligned(voice, conv, singing):
    from aisinger.live import convert_stream, convert_whole

    x = np.concatenate([np.zeros(12000, np.float32), singing])
    y, stats = convert_stream(voice, x, 24000, converter=conv)
    assert y.shape == x.shape and y.dtype == np.float32
    assert stats.blocks == -(-(x.shape[0] + 5 * 240) // 960) == len(stats.compute_ms)
    # the same voice, encoder and settings on the whole signal at once: the stream carries
    # its state so that it matches, and the lookahead delay is removed (aligned sample-exact;
    # one frame either way is far off)
    w = convert_whole(conv, x, 24000)
    assert _corr(y, w) > 0.95
    assert _corr(y, w) > max(_corr(y, w, 240), _corr(y, w, -240)) + 0.3
    # at another rate: resampled in, same length rule as convert()
    y2, _ = convert_stream(voice, x[::2].copy(), 12000, converter=conv)
    assert y2.shape == (x.shape[0],)


def _join_jumps(y: np.ndarray, bs: int) -> tuple[float, float]:
    d = np.abs(np.diff(y))
    joins = np.arange(bs, y.shape[0] - 1, bs) - 1
    return float(d[joins].max()), float(np.percentile(d, 99.9))


def test_no_click_at_block_joins(conv, singing):
    y = np.concatenate(_stream(conv, singing))
    assert np.abs(y).max() > 1e-3
    join, p999 = _join_jumps(y, conv.block_samples)
    # a click is a jump far above the signal's own sample-to-sample changes
    assert join <= p999, (join, p999)


def test_two_block_sizes_give_the_same_conversion(voice, singing):
    from aisinger.live import StreamingConverter, convert_stream

    a, _ = convert_stream(voice, singing, 24000, block_ms=40)
    b, _ = convert_stream(voice, singing, 24000,
                          converter=StreamingConverter(voice, block_ms=100))
    # same features frame by frame; only the decoder's right context at the edges differs
    assert np.corrcoef(a, b)[0, 1] > 0.9


def test_a_student_with_a_longer_lookahead_gets_it(voice, singing, tmp_path):
    """A student trained with more lookahead (scripts/train_live_content.py --lookahead)
    raises the stream's lookahead and latency, and still streams as on the whole signal."""
    import json

    from safetensors.torch import save_file

    from aisinger.live import LOOKAHEAD_MS, StreamingConverter, convert_stream, convert_whole
    from aisinger.nn.live_content import LiveContentConfig, LiveContentNet

    torch.manual_seed(0)
    cfg = LiveContentConfig(hidden=16, dilations=(1, 2), lookahead=6)
    path = tmp_path / "live-content.safetensors"
    save_file({k: v.half().contiguous() for k, v in LiveContentNet(cfg).state_dict().items()},
              str(path), metadata={"format": "aisinger-live-content",
                                   "config": json.dumps(cfg.to_dict())})
    conv = StreamingConverter(voice, block_ms=40, content_model=path)
    assert conv.lookahead == 7 and conv.latency_ms == 40 + 70 > 40 + LOOKAHEAD_MS
    x = np.concatenate([np.zeros(12000, np.float32), singing])
    y, stats = convert_stream(voice, x, 24000, converter=conv)
    assert stats.latency_ms == 110 and y.shape == x.shape
    w = convert_whole(conv, x, 24000)
    assert _corr(y, w) > 0.95
    assert _corr(y, w) > max(_corr(y, w, 240), _corr(y, w, -240)) + 0.3


def test_reset_starts_a_new_stream(conv, singing):
    first = _stream(conv, singing)
    again = _stream(conv, singing)  # _stream resets
    assert all(np.array_equal(p, q) for p, q in zip(first, again))
    # without a reset the state carries over: the next block is not the fresh start's silence
    carried = conv.process(singing[:conv.block_samples])
    assert np.abs(carried).max() > 0


@pytest.mark.parametrize("block,why", [
    (np.zeros(959, np.float32), "must be 960 mono samples"),
    (np.zeros((2, 960), np.float32), "must be 960 mono samples"),
    (np.full(960, np.nan, np.float32), "NaN or infinite"),
    (np.r_[np.zeros(959), np.inf].astype(np.float32), "NaN or infinite"),
    (np.array(["a"] * 960), "real samples"),
])
def test_bad_blocks_are_one_line_errors(conv, block, why):
    with pytest.raises(AisingerError, match=why) as e:
        conv.process(block)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("kw,why", [
    ({"block_ms": 15}, "multiple of 10 ms"), ({"block_ms": 0}, "multiple of 10 ms"),
    ({"block_ms": 5000}, "multiple of 10 ms"), ({"transpose": float("nan")}, "transpose"),
    ({"threads": 0}, "threads"), ({"content": "hubert"}, "unknown content encoder"),
    ({"retrieval": 1.5}, "retrieval must be in"), ({"protect": -0.1}, "protect must be in"),
    ({"f0_precision": "fp8"}, "unknown F0 precision"),
])
def test_bad_settings_are_one_line_errors(voice, kw, why):
    from aisinger.live import StreamingConverter

    with pytest.raises(AisingerError, match=why):
        StreamingConverter(voice, **kw)


def test_voice_without_consent_is_refused(voice, tmp_path):
    import shutil

    from aisinger.live import StreamingConverter

    v = tmp_path / "v"
    shutil.copytree(voice, v)
    (v / "consent.json").unlink()
    with pytest.raises(AisingerError, match="consent"):
        StreamingConverter(v)


def test_cli_input_output_writes_one_labelled_file(voice, singing, tmp_path):
    from aisinger.cli import command
    from aisinger.io.audio import load, save
    from aisinger.label.metadata import check_metadata

    src = save(tmp_path / "in.wav", singing, 24000)
    before = src.read_bytes()
    out = tmp_path / "out" / "live.wav"
    out.parent.mkdir()
    r = CliRunner().invoke(command(), ["live", "--voice", str(voice), "--input", str(src),
                                       "--output", str(out), "--block-ms", "50"])
    assert r.exit_code == 0, r.output
    assert "latency: 100 ms algorithmic" in r.output and "p99" in r.output
    assert src.read_bytes() == before  # the input is untouched
    assert [p.name for p in out.parent.iterdir()] == ["live.wav"]  # no temp files left
    y, sr = load(out, mono=True)
    assert sr == 24000 and y.shape[0] == singing.shape[0]
    assert check_metadata(out).valid
    # a failing run (the real entry point: one 'error:' line, exit 2) leaves the output as it was
    out_before = out.read_bytes()
    r = _main("live", "--voice", str(voice), "--input", str(src), "--output", str(out),
              "--block-ms", "15")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: live: block length 15.0 ms must be a multiple of 10 ms from 20 to 1000 ms"]
    assert out.read_bytes() == out_before


SRC = Path(__file__).resolve().parents[2] / "src"


def _main(*args: str, pre: str = "pass"):
    """``aisinger ARGS`` through the console entry point in a fresh interpreter (``pre``: code
    run first)."""
    import os
    import subprocess

    code = f"import sys; {pre}; from aisinger.cli import main; sys.argv = ['aisinger', " \
           f"*{list(args)!r}]; main()"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=300)


def test_cli_input_needs_output_and_devices_need_a_backend(voice):
    r = _main("live", "--voice", str(voice), "--input", "x.wav")
    assert r.returncode == 2 and "--input needs --output" in r.stderr
    # as on a machine without PortAudio: the import of sounddevice fails
    r = _main("live", "--voice", str(voice), "--seconds", "1",
              pre="sys.modules['sounddevice'] = None")
    assert r.returncode == 2 and "no audio device backend" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_student_streams_exactly_as_on_the_whole_signal():
    from aisinger.nn.live_content import LiveContentConfig, LiveContentNet, StreamState, step

    torch.manual_seed(0)
    net = LiveContentNet(LiveContentConfig(hidden=16, dilations=(1, 2, 4))).eval()
    x = torch.randn(1, 80, 57)
    with torch.no_grad():
        whole = net(x)
        st = StreamState(net)
        parts = torch.cat([step(net, x[:, :, a:a + 5], st) for a in range(0, 57, 5)], dim=1)
    assert torch.allclose(parts, whole, atol=1e-5)


def test_int8_streaming_f0_follows_float32(singing):
    """The int8 FCPE of the live path (docs/live.md) gives the float32 F0, block by block."""
    from aisinger.io.audio import resample
    from aisinger.live.features import FcpeStream

    x16 = resample(singing, 24000, 16000)
    total = x16.shape[0] // 160
    f0 = {}
    for prec in ("float32", "int8"):
        fs, out = FcpeStream(precision=prec), np.zeros(total)
        for a in range(0, total - 13, 8):  # 8 final frames + 5 provisional, as a stream
            out[a:a + 8] = fs.frames(x16, 0, a, a + 13, a + 8)[:8]
        f0[prec] = out
    ref, q = f0["float32"], f0["int8"]
    assert (ref > 0).mean() > 0.3  # the phrase is sung: the comparison is not vacuous
    assert ((ref > 0) == (q > 0)).mean() >= 0.97
    both = (ref > 0) & (q > 0)
    assert np.median(np.abs(1200 * np.log2(q[both] / ref[both]))) < 5.0


def test_shipped_student_is_registered_and_loads():
    from aisinger.assets import get
    from aisinger.live.features import STUDENT_ASSET, load_student

    asset = get(STUDENT_ASSET)
    assert asset.shipped and asset.files[0].sha256
    net = load_student()
    assert net.cfg.lookahead >= 1 and sum(p.numel() for p in net.parameters()) < 3_000_000


def test_live_help_shows_the_library_defaults():
    import re

    from aisinger.cli import command
    from aisinger.live import DEFAULT_BLOCK_MS, LOOKAHEAD_MS

    r = CliRunner().invoke(command(), ["live", "--help"], prog_name="aisinger",
                           env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    h = re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", r.output))
    assert f"a multiple of 10 (default {DEFAULT_BLOCK_MS:g})" in h
    assert f"latency = block + {LOOKAHEAD_MS:g} ms" in h
