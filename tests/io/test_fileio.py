"""Atomic writes: the old file or the new one, never half a file, never a stray temp."""

import pytest

from aisinger.io import fileio


def test_atomic_path_replaces_on_success(tmp_path):
    target = tmp_path / "sub" / "x.json"
    fileio.write_json(target, {"a": "中文"})
    assert target.read_text(encoding="utf-8").strip() == '{\n  "a": "中文"\n}'
    assert [p.name for p in target.parent.iterdir()] == ["x.json"]


def test_atomic_path_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "x.bin"
    fileio.write_bytes(target, b"old")
    with pytest.raises(RuntimeError):
        with fileio.atomic_path(target) as tmp:
            assert tmp.suffix == ".bin" and tmp.parent == tmp_path  # same folder, real suffix
            tmp.write_bytes(b"half")
            raise RuntimeError("crash mid-write")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_sha256_file(tmp_path):
    p = fileio.write_bytes(tmp_path / "f", b"abc")
    assert fileio.sha256_file(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_written_files_get_umask_permissions(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        p = fileio.write_bytes(tmp_path / "perm.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(p.stat().st_mode) == 0o644
