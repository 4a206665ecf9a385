"""The CLI explains itself and fails cleanly."""

import subprocess
import sys

import pytest

from aisinger import __version__

COMMANDS = [[], ["models"], ["models", "list"], ["models", "fetch"], ["models", "verify"],
            ["separate"], ["features"], ["info"], ["eval"], ["lab"], ["lab", "make"],
            ["lab", "voices"], ["dataset"], ["dataset", "build"], ["label"], ["detect"],
            ["voice"], ["voice", "info"], ["voice", "import"], ["train"], ["convert"]]


def run(*args, **kw):
    return subprocess.run([sys.executable, "-m", "aisinger", *args], capture_output=True,
                          text=True, timeout=120, **kw)


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_help(cmd):
    out = run(*cmd, "--help")
    assert out.returncode == 0 and "Usage" in out.stdout and len(out.stdout) > 200


def test_version():
    out = run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"aisinger {__version__}"


def test_separate_needs_song_or_example(tmp_path):
    out = run("separate", "-o", str(tmp_path))
    assert out.returncode == 2 and out.stderr.startswith("error: give either a SONG or --example")


def test_label_detect_roundtrip_cli(tmp_path):
    """aisinger label → detect exits 0; the unlabelled original exits 1; a bad file exits 2."""
    import numpy as np

    from aisinger.io import audio
    from aisinger.lab import make_melody, sing

    notes = make_melody(8, seed=3)
    x = sing(["la"] * 8, notes, "flite-slt")
    x = np.concatenate([x] * 3)  # > 10 s, a realistic clip
    src = audio.save(tmp_path / "take.wav", x, 44100)
    out = tmp_path / "take_labelled.flac"
    r = run("label", str(src), "-o", str(out), "--voice-id", "lab-slt")
    assert r.returncode == 0, r.stderr
    r = run("detect", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    r = run("detect", str(src))
    assert r.returncode == 1, r.stdout + r.stderr
    r = run("detect", str(tmp_path / "missing.wav"))
    assert r.returncode == 2 and r.stderr.startswith("error: ")


def test_voice_info_cli(tmp_path):
    from aisinger.consent import save_consent, self_consent

    save_consent(self_consent("Test Singer"), tmp_path / "consent.json")
    r = run("voice", "info", str(tmp_path))
    assert r.returncode == 0 and "Test Singer" in r.stdout
    r = run("voice", "info", str(tmp_path / "nope"))
    assert r.returncode == 2 and "error:" in r.stderr
