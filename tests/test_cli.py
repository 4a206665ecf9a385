"""The CLI explains itself and fails cleanly."""

import subprocess
import sys

import pytest

from aisinger import __version__

COMMANDS = [[], ["models"], ["models", "list"], ["models", "fetch"], ["models", "verify"],
            ["separate"], ["features"], ["info"], ["eval"], ["lab"], ["lab", "make"],
            ["lab", "voices"], ["dataset"], ["dataset", "build"]]


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
