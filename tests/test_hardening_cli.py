"""Issue #15 (CLI / data loss / labels): regression tests that need no trained voice.

Each test names the item it pins; each failed on the code before the fix (see the issue's
closing note).  Tests that need a voice are in tests/test_cover.py (section "hardening").
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from aisinger.io import audio, fileio
from aisinger.errors import AisingerError

SR = 44100


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "aisinger", *map(os.fsdecode, args)],
                          capture_output=True, text=True, timeout=300, env=env,
                          errors="surrogateescape")


def _song(path: Path, seconds: float = 3.0) -> Path:
    t = np.arange(int(seconds * SR)) / SR
    x = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return audio.save(path, x.astype(np.float32), SR)


# -------------------------------------------------------------------------- item 3


def test_non_utf8_file_names_are_read_and_labelled(tmp_path):
    """#15 item 3: a file name that is not valid UTF-8 gave `UnicodeEncodeError ... surrogates
    not allowed` in detect, label and info."""
    src = _song(tmp_path / "song.wav")
    bad = Path(os.fsdecode(bytes(tmp_path) + b"/\xff\xfebad.wav"))
    os.link(src, bad)
    out = Path(os.fsdecode(bytes(tmp_path) + b"/\xffout.wav"))
    for args, rc in ((["info", bad], 0), (["detect", bad], 1), (["label", bad, "-o", out], 0),
                     (["detect", out], 0)):
        proc = _cli(*args)
        assert proc.returncode == rc, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and "UnicodeEncodeError" not in proc.stderr
    y, _ = audio.load(out)
    assert y.shape[-1] == 3 * SR


# -------------------------------------------------------------------------- item 6


def test_label_warns_about_a_truncated_mp3(tmp_path):
    """#15 item 6: `label` of a half-truncated mp3 labelled 2.4 s of a 5 s song without a
    word; now it warns with how much is missing."""
    full = _song(tmp_path / "five.mp3", 5.0)
    data = full.read_bytes()
    half = tmp_path / "half.mp3"
    half.write_bytes(data[:len(data) // 2])
    proc = _cli("label", half, "-o", tmp_path / "l.wav")
    assert proc.returncode == 0, proc.stderr
    assert "truncated" in proc.stderr and "5.00 s" in proc.stderr and "missing" in proc.stderr
    ok = _cli("label", full, "-o", tmp_path / "l5.wav")
    assert ok.returncode == 0 and "truncated" not in ok.stderr


def test_eval_batch_where_cases_fail_exits_nonzero(tmp_path):
    """#15 item 6: `eval --batch` where every case fails printed a table and exited 0."""
    import json

    (tmp_path / "eval.json").write_text(json.dumps(
        [{"output": "missing1.wav"}, {"output": "missing2.wav"}]))
    proc = _cli("eval", tmp_path / "eval.json", "--batch", "--metric", "rtf")
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "2 of 2 cases failed" in proc.stderr and "missing1.wav" in proc.stderr


def test_train_config_and_output_rate_are_validated():
    """#15 item 6 (siblings): impossible training settings and output rates are refused."""
    from aisinger.voice.train_ddsp import TrainConfig

    for bad in ({"steps": -5}, {"steps": 0}, {"batch_size": 0}, {"learning_rate": float("nan")},
                {"segment_s": -1.0}):
        with pytest.raises(AisingerError, match="train:"):
            TrainConfig(**bad)
    with pytest.raises(AisingerError, match="Hz"):
        audio.save("/tmp/never-written.wav", np.zeros(100, np.float32), 1)


# -------------------------------------------------------------------------- item 1 sibling


def test_output_check_detects_hard_links_and_folders(tmp_path):
    """#15 item 1: outputs are compared with inputs by inode too (a hard link has another
    path), and an input inside a folder that will be replaced is refused; both named."""
    src = _song(tmp_path / "in.wav")
    os.link(src, tmp_path / "link.wav")
    with pytest.raises(AisingerError, match="link.wav.*in.wav"):
        audio.check_output_not_input(tmp_path / "link.wav", src)
    (tmp_path / "d").mkdir()
    inside = _song(tmp_path / "d" / "x.wav")
    with pytest.raises(AisingerError, match="replace the input"):
        audio.check_outputs_not_inputs([tmp_path / "other.wav"], [inside],
                                       folders=[tmp_path / "d"])
    proc = _cli("features", src, "-o", tmp_path / "link.wav")
    assert proc.returncode == 2 and "overwrite the input" in proc.stderr
    assert audio.load(src)[0].shape[-1] == 3 * SR


# -------------------------------------------------------------------------- item 2 (parts)


def test_stale_temp_files_of_dead_processes_are_cleaned(tmp_path):
    """#15 item 2: temp names carry the writer's pid; a later run removes those of dead
    processes and keeps those of live ones (and its own)."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (tmp_path / f"{fileio.TEMP_PREFIX}{dead}-abc.song.wav").write_bytes(b"half")
    (tmp_path / f"{fileio.TEMP_PREFIX}{dead}-xyz.c.wav.stems").mkdir()
    mine = tmp_path / f"{fileio.temp_prefix()}mine.wav"
    mine.write_bytes(b"x")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.2)
        theirs = tmp_path / f"{fileio.TEMP_PREFIX}{live.pid}-q.wav"
        theirs.write_bytes(b"x")
        old_style = tmp_path / ".c.abcd1234.tmp.mp3"  # an older aisinger's temp name
        old_style.write_bytes(b"x")
        os.utime(old_style, (time.time() - 7200, time.time() - 7200))
        keep = tmp_path / "user.wav"
        keep.write_bytes(b"x")
        removed = fileio.clean_stale(tmp_path)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, theirs.name,
                                                                     "user.wav"])
        assert len(removed) == 3
    finally:
        live.kill()
        live.wait()


def test_atomic_dir_replaces_a_folder_whole(tmp_path):
    target = tmp_path / "x.stems"
    target.mkdir()
    (target / "old.wav").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with fileio.atomic_dir(target) as tmp:
            (tmp / "new.wav").write_bytes(b"half")
            raise RuntimeError("crash")
    assert [p.name for p in target.iterdir()] == ["old.wav"]
    with fileio.atomic_dir(target) as tmp:
        assert not target.joinpath("new.wav").exists()
        (tmp / "new.wav").write_bytes(b"new")
    assert [p.name for p in target.iterdir()] == ["new.wav"]
    assert [p.name for p in tmp_path.iterdir()] == ["x.stems"]


def test_write_labelled_publishes_labelled_and_measures_lossy_peaks(tmp_path):
    """#14 item 1 / #15 items 2, 18: the one labelled writer tags before the only rename and
    keeps a dense MP3 at or below the ceiling as measured on the written file."""
    from aisinger.label import label_audio, write_labelled
    from aisinger.label.metadata import check_metadata
    from aisinger.dsp.peak import limit_true_peak, true_peak_dbtp

    rng = np.random.default_rng(0)
    x = np.clip(rng.standard_normal((2, 3 * SR)) * 0.5, -1, 1).astype(np.float32)
    x, _ = limit_true_peak(x, SR, -1.0)  # dense material at the ceiling: mp3 overshoots it
    marked, label = label_audio(x, SR, voice_id="v")
    w = write_labelled(marked, SR, tmp_path / "o.mp3", label, ceiling_dbtp=-1.0)
    y, _ = audio.load(w.path)
    assert true_peak_dbtp(y) <= -1.0 + 1e-3 and w.true_peak_dbtp <= -1.0 + 1e-3
    assert w.gain_db < 0  # the encoder's overshoot was taken off
    assert check_metadata(w.path).valid
    assert [p.name for p in tmp_path.iterdir()] == ["o.mp3"]
    # float WAV above 1.0 (speak --lang zh wrote 62 such samples): limited to the ceiling
    loud = (np.sin(np.linspace(0, 800 * np.pi, SR)) * 1.3).astype(np.float32)
    w = write_labelled(loud, SR, tmp_path / "f.wav", {}, ceiling_dbtp=-1.0)
    assert np.abs(audio.load(w.path)[0]).max() < 1.0


# -------------------------------------------------------------------------- item 19


def test_info_takes_several_files_and_help_reads_well(tmp_path):
    """#15 item 19: `info A B`; flags shown without `<bool>`; help not wrapped mid-sentence."""
    a, b = _song(tmp_path / "a.wav"), _song(tmp_path / "b.wav", 1.0)
    proc = _cli("info", a, b)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.strip().splitlines()) == 2 and "1.000 s" in proc.stdout
    bad = _cli("info", a, tmp_path / "missing.wav")
    assert bad.returncode == 2 and "a.wav" in bad.stdout and "missing.wav" in bad.stderr
    env = {**os.environ, "COLUMNS": "250", "TERMINAL_WIDTH": "250"}
    top = _cli("--help", env=env).stdout
    assert "starting from the base model that ships with aisinger" in top  # one sentence, unbroken
    for cmd in (["cover"], ["convert"], ["detect"], ["--help"]):
        out = _cli(*cmd, "--help", env=env).stdout if cmd != ["--help"] else top
        assert "<bool>" not in out, cmd


def test_unknown_pitch_method_is_a_clear_error(tmp_path):
    """#15 item 6 sibling: `features --f0 bogus` gave a KeyError traceback."""
    proc = _cli("features", _song(tmp_path / "s.wav"), "-o", tmp_path / "f.npz", "--f0", "bogus")
    assert proc.returncode == 2 and "pitch method 'bogus' is unknown" in proc.stderr, proc.stderr


def test_label_of_audio_too_short_for_a_watermark_says_so(tmp_path):
    """#15 item 6 sibling: `label` of a 0.5 s file said "labelled" though no watermark can be
    read from it; now it warns that only the metadata label marks it."""
    proc = _cli("label", _song(tmp_path / "short.wav", 0.5), "-o", tmp_path / "l.wav")
    assert proc.returncode == 0 and "shorter than the 1 s a watermark needs" in proc.stderr


def test_worker_cleans_work_folders_of_killed_workers(tmp_path):
    """#15 item 2: `worker-cache/work/tmp*` folders of killed jobs stayed forever; the work
    folders now carry the worker's pid and a starting worker removes those of dead ones."""
    from aisinger.service.worker import Worker

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / "work" / f"{fileio.TEMP_PREFIX}{dead}-job"
    stale.mkdir(parents=True)
    (stale / "song.wav").write_bytes(b"x" * 100)
    w = Worker("http://127.0.0.1:9", "token", tmp_path)
    try:
        assert list((tmp_path / "work").iterdir()) == []
    finally:
        w.client.close()
