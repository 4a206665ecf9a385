"""`aisinger models verify` / `models list` as a new user meets them (issue #15 item 17)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys

from typer.testing import CliRunner

from aisinger import assets


def _asset(tmp_path, name: str, payload: bytes) -> assets.Asset:
    src = tmp_path / f"{name}.src"
    src.write_bytes(payload)
    return assets.Asset(name, "a test file", "MIT", f"tests ({name})",
                        (assets.AssetFile("blob.bin", hashlib.sha256(payload).hexdigest(),
                                          len(payload), urls=(src.as_uri(),)),))


def test_verify_separates_optional_missing_from_broken(tmp_path, tmp_cache, monkeypatch):
    from aisinger.cli import app

    need, opt = _asset(tmp_path, "need-me", b"needed" * 50), _asset(tmp_path, "opt-me", b"o" * 9)
    monkeypatch.setattr(assets, "REGISTRY", {a.name: a for a in (need, opt)})
    monkeypatch.setattr(assets, "NEEDED", frozenset({"need-me"}), raising=False)
    # assets.fetch only takes URLs for hub assets; offline ones come from wheels
    monkeypatch.setitem(assets.REGISTRY, "need-me", dataclasses.replace(need, offline=False))
    assets.fetch("need-me")
    monkeypatch.setitem(assets.REGISTRY, "need-me", need)
    run = CliRunner().invoke
    # right after a successful main job: the optional asset was never fetched → exit 0
    r = run(app, ["models", "verify"])
    assert r.exit_code == 0, r.output
    assert "OK      need-me" in r.output and "opt-me: not fetched (optional" in r.output
    # asked for by name: missing is an error
    r = run(app, ["models", "verify", "opt-me"])
    assert r.exit_code == 1 and "MISSING opt-me" in r.output, r.output
    # a corrupt optional asset is broken
    (tmp_cache / "models" / "opt-me").mkdir(parents=True)
    (tmp_cache / "models" / "opt-me" / "blob.bin").write_bytes(b"tampered")
    r = run(app, ["models", "verify"])
    assert r.exit_code == 1 and "CORRUPT opt-me" in r.output, r.output
    # a needed asset that is gone is broken
    (tmp_cache / "models" / "opt-me" / "blob.bin").unlink()
    (tmp_cache / "models" / "need-me" / "blob.bin").unlink()
    r = run(app, ["models", "verify"])
    assert r.exit_code == 1 and "MISSING need-me" in r.output, r.output


def test_models_list_never_truncates_names():
    for cols in ("80", "60"):
        env = {**os.environ, "COLUMNS": cols}
        out = subprocess.run([sys.executable, "-m", "aisinger", "models", "list"],
                             capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 0, out.stderr
        for name in assets.REGISTRY:
            assert f" {name} " in out.stdout, (cols, name)
