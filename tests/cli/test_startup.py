"""``aisinger --help`` must stay quick: the help path imports no heavy third-party module.

The CLI imports the whole library at module level (the layer rule), so every module it reaches
must import the heavy libraries listed in tests/test_layering.py (``HEAVY``) inside the
functions that use them.  This test runs the real command in a fresh interpreter with
``-X importtime`` and fails when any of them is loaded.  It checks what is imported, not how
long it takes (timings belong in benchmarks; the measured start-up time is in
docs/architecture.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
FORBIDDEN = ("fastapi", "starlette", "uvicorn", "huey", "redis", "torch", "scipy",
             "onnxruntime", "transformers", "matplotlib", "mutagen")


def imported_modules(*args: str) -> set[str]:
    """Every module a fresh ``python -X importtime -m aisinger ARGS`` imports."""
    env = dict(os.environ, PYTHONPATH=str(SRC), COLUMNS="100")
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "aisinger", *args],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    mods = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
            if line.startswith("import time:") and "|" in line}
    assert "aisinger.cli" in mods, "importtime output not understood"
    return mods


def heavy(mods: set[str]) -> list[str]:
    return sorted(m for m in mods if m.split(".")[0] in FORBIDDEN)


def test_help_imports_no_heavy_module():
    mods = imported_modules("--help")
    assert "aisinger.service.cli" in mods  # the whole command tree was built
    assert not heavy(mods), f"'aisinger --help' imports heavy modules: {heavy(mods)[:20]}"


def test_subcommand_help_imports_no_heavy_module():
    for args in (("serve", "--help"), ("cover", "--help"), ("label", "--help")):
        mods = imported_modules(*args)
        assert not heavy(mods), f"'aisinger {' '.join(args)}' imports {heavy(mods)[:20]}"


def test_the_check_sees_a_heavy_import():
    """The parser itself: a command that does load scipy is caught."""
    env = dict(os.environ, PYTHONPATH=str(SRC))
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import scipy.fft"],
                          capture_output=True, text=True, env=env, timeout=120)
    mods = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
            if line.startswith("import time:")}
    assert heavy(mods) and "scipy.fft" in heavy(mods)
