"""Regression tests for issue #15 (service half): hostile voice archives, bad audio uploads,
queue positions after a requeue, titles, worker paths in messages, the CJK font of the web
page.  In process where that shows the defect; against a real ``aisinger serve`` otherwise."""

from __future__ import annotations

import io
import json
import os
import struct
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from service_util import SR, Server, client, token, untrained_voice, upload, wait_job

VOICE = {"config.json": b"{}", "model.safetensors": b"w" * 4000, "consent.json": b"{}"}


def _zip(files: dict[str, bytes], method=zipfile.ZIP_STORED) -> bytearray:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for k, v in files.items():
            zf.writestr(k, v)
    return bytearray(buf.getvalue())


def _targz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for k, v in files.items():
            ti = tarfile.TarInfo(k)
            ti.size = len(v)
            tf.addfile(ti, io.BytesIO(v))
    return buf.getvalue()


def _hostile_archives() -> dict[str, bytes]:
    out = {}
    z = _zip(VOICE)                                   # stored: a flipped byte is a CRC error
    i = z.find(b"w" * 100)
    z[i + 50] ^= 0xFF
    out["bad CRC zip"] = bytes(z)
    z = _zip({k: v * 50 for k, v in VOICE.items()}, zipfile.ZIP_DEFLATED)
    i = z.find(b"model.safetensors") + len("model.safetensors")
    z[i + 5] ^= 0xFF
    out["corrupt deflate zip"] = bytes(z)
    z = _zip(VOICE)                                   # central directory offset past the end
    e = z.rfind(b"PK\x05\x06")
    struct.pack_into("<I", z, e + 16, 10**6)
    out["broken central directory"] = bytes(z)
    t = _targz({k: os.urandom(len(v)) for k, v in VOICE.items()})
    out["truncated tar.gz"] = t[: len(t) // 2]
    return out


def test_hostile_archives_are_refused_with_one_line(tmp_path):
    """Item 8: damaged archives are an UploadError (4xx) naming the problem, not a crash."""
    from aisinger.service.media import UploadError, extract_voice

    for what, data in _hostile_archives().items():
        arc = tmp_path / "a.bin"
        arc.write_bytes(data)
        with pytest.raises(UploadError) as ei:
            extract_voice(arc, tmp_path / "out", 10 << 20)
        msg = str(ei.value)
        assert 400 <= ei.value.status < 500 and "\n" not in msg, (what, msg)
        assert msg.startswith("voice archive: "), (what, msg)
        assert not (tmp_path / "out").exists()


def test_archive_work_is_bounded_including_skipped_members(tmp_path):
    """Item 8: zeros in a member that is skipped still cost decompression: bounded."""
    from aisinger.service.media import UploadError, extract_voice

    files = {"junk/a/b/zeros.bin": bytes(8 << 20), **VOICE}   # skipped (too deep), 8 MiB
    arc = tmp_path / "zeros.tar.gz"
    arc.write_bytes(_targz(files))
    assert arc.stat().st_size < 100_000
    with pytest.raises(UploadError) as ei:
        extract_voice(arc, tmp_path / "out", max_bytes=1 << 20)
    assert ei.value.status == 413 and "skipped" in str(ei.value)
    # and a time bound
    ok = tmp_path / "ok.tar.gz"
    ok.write_bytes(_targz(VOICE))
    with pytest.raises(UploadError) as ei:
        extract_voice(ok, tmp_path / "out", max_bytes=1 << 20, max_seconds=-1)
    assert ei.value.status == 413 and "too long" in str(ei.value)
    assert extract_voice(ok, tmp_path / "out", max_bytes=1 << 20).is_dir()
