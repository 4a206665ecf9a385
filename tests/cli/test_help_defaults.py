"""Defaults shown in ``--help`` come from the library (one source: CLI, service and library
cannot drift).

Each check compares the rendered help of a real command with the library's own default, so a
help text that hard-codes a number fails as soon as the library's value changes.  The last test
changes two library defaults in a fresh interpreter before the CLI is imported and expects the
help to follow them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from aisinger.cli import command
from aisinger.cli.options import library_default
from aisinger.dataset import DatasetConfig
from aisinger.label.cue import DEFAULT_CUE
from aisinger.lab import make_corpus
from aisinger.pipelines.demo import DEMO_TRAIN_MINUTES
from aisinger.service.config import ServiceConfig
from aisinger.voice import train_ddsp, train_nsf, train_vits

SRC = Path(__file__).resolve().parents[2] / "src"


def flat(text: str) -> str:
    """Help text without the boxes and line breaks (rich wraps at spaces)."""
    return re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", text)).strip()


def help_of(*args: str) -> str:
    result = CliRunner().invoke(command(), [*args, "--help"], prog_name="aisinger",
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return flat(result.output)


def g(x: float) -> str:
    return f"{x:g}"


def test_dataset_build_help_shows_the_dataset_config_defaults():
    h = help_of("dataset", "build")
    D = DatasetConfig
    assert f"Clip sample rate in Hz (default {D.sample_rate})" in h
    assert f"Shortest clip, seconds (default {g(D.min_clip_s)})" in h
    assert f"Longest clip, seconds (default {g(D.max_clip_s)})" in h
    assert f"(default {g(D.target_lufs)} LUFS)" in h
    assert f"validation (default {g(D.validation_fraction)})" in h
    assert f"clean {g(D.min_clip_s)}-{g(D.max_clip_s)} s clips" in h


def test_train_help_shows_each_familys_steps():
    h = help_of("train")
    assert (f"(default: ddsp {train_ddsp.TrainConfig.steps}, nsf "
            f"{train_nsf.NsfTrainConfig.steps}, vits {train_vits.VitsTrainConfig.steps})") in h


def test_serve_help_shows_the_service_config_defaults():
    h = help_of("serve")
    assert f"Port (default {ServiceConfig.port})" in h
    assert f"Listen address (default {ServiceConfig.host};" in h
    assert f"(default {ServiceConfig.workers}; 0 = only remote workers)" in h


@pytest.mark.parametrize("args, option, value", [
    (("demo",), "--train-minutes", DEMO_TRAIN_MINUTES),
    (("lab", "make"), "--workers", library_default(make_corpus, "workers")),
    (("label",), "--explicit-label", DEFAULT_CUE),
])
def test_typer_defaults_are_the_library_defaults(args, option, value):
    h = help_of(*args)
    part = h[h.index(option):]
    shown = re.search(r"\[default: ([^\]]+)\]", part).group(1)
    assert shown == str(value), f"{' '.join(args)} {option}: help shows {shown}, library {value}"


def test_help_follows_a_changed_library_default():
    code = ("from aisinger.dataset import DatasetConfig\n"
            "from aisinger.service.config import ServiceConfig\n"
            "DatasetConfig.sample_rate = 12345\n"
            "ServiceConfig.port = 8765\n"
            "from aisinger.cli import main\n"
            "main()\n")
    env = dict(os.environ, PYTHONPATH=str(SRC), COLUMNS="200")
    out = {}
    for args in (("dataset", "build"), ("serve",)):
        proc = subprocess.run([sys.executable, "-c", code, *args, "--help"], env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out[args] = flat(proc.stdout)
    assert "Clip sample rate in Hz (default 12345)" in out[("dataset", "build")]
    assert "Port (default 8765)" in out[("serve",)]
