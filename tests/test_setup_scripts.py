"""scripts/setup.sh run against recording stand-ins for apt-get, dpkg-query and Python (issue
#15 items 12-14): what it asks apt and pip to do, without installing anything."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _shim(path: Path, body: str) -> None:
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(0o755)


def _run_setup(tmp_path: Path, *args: str) -> tuple[list[str], list[str], str]:
    """Copy setup.sh into a scratch checkout; run it with apt/dpkg/python stand-ins that log
    their arguments.  Returns (apt-get calls, pip calls, stderr)."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup.sh", repo / "scripts" / "setup.sh")
    shutil.copy(ROOT / "pyproject.toml", repo / "pyproject.toml")
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    log = tmp_path / "log"
    _shim(bin_ / "apt-get", f'echo "apt-get $*" >> {log}\n')
    _shim(bin_ / "sudo", '"$@"\n')
    _shim(bin_ / "dpkg-query", "exit 1\n")                 # nothing is installed
    _shim(bin_ / "id", "echo 0\n")
    venv_py = repo / ".venv" / "bin" / "python"
    venv_py.parent.mkdir(parents=True)
    _shim(venv_py, f'echo "python $*" >> {log}\n')
    _shim(bin_ / "python3", "exit 0\n")
    env = dict(os.environ, PATH=f"{bin_}:{os.environ['PATH']}", PYTHON=str(bin_ / "python3"))
    p = subprocess.run(["bash", str(repo / "scripts" / "setup.sh"), *args], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    lines = log.read_text().splitlines()
    return ([x for x in lines if x.startswith("apt-get")],
            [x for x in lines if x.startswith("python") and "pip" in x], p.stderr)


def test_apt_waits_for_the_lock(tmp_path):
    """Item 13: every apt-get call waits for another apt process's lock."""
    for args in ((), ("--test",)):
        apt, _, _ = _run_setup(tmp_path / f"run{len(args)}", *args)
        assert any(" update" in a for a in apt) and any(" install" in a for a in apt), apt
        for call in apt:
            assert "DPkg::Lock::Timeout=600" in call, call


def test_a_cjk_font_is_installed_for_the_web_ui(tmp_path):
    """Item 12: the demo set-up (users serve the UI after it) and the test set-up both install
    a CJK font, the one style.css names."""
    for args in ((), ("--test",)):
        apt, _, _ = _run_setup(tmp_path / f"run{len(args)}", *args)
        install = next(a for a in apt if " install" in a)
        assert "fonts-wqy-microhei" in install.split(), install
    css = (ROOT / "src/aisinger/service/static/style.css").read_text()
    assert '"WenQuanYi Micro Hei"' in css


def test_pip_is_not_silent(tmp_path):
    """Item 14: pip and apt show what they install (no -q / -qq), and the step says how long
    it takes."""
    apt, pip, err = _run_setup(tmp_path)
    install = next(a for a in apt if " install" in a)
    assert " -qq" not in install, install
    assert len(pip) == 2, pip
    for call in pip:
        assert " -q" not in call and "--quiet" not in call, call
    assert "~2 min" in err
