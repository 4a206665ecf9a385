"""Files that come in from users: songs (content-sniffed audio) and voice folders.

Nothing a client sends is ever used as a path: uploads are streamed to a server-generated
name, recognised by their content (ffprobe via :mod:`aisinger.io.audio`, never the extension)
and renamed to ``<id><ext>`` where the extension follows the sniffed container.  Voice
archives are read member by member; only the known voice-folder file names are written,
into a folder with a server-generated name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import lzma
import re
import shutil
import subprocess
import tarfile
import time
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np

from aisinger.consent import check_scope, load_consent
from aisinger.errors import AisingerError, AudioError
from aisinger.io.audio import check_info, ffprobe, info
from aisinger.layout import (CARD_JSON, CONSENT_FILE, TRAINING_DIR, VOICE_CONFIG, VOICE_FILES,
                             VOICE_MODEL)
from aisinger.voice.folder import load_voice

CONTAINERS = {"wav": ".wav", "flac": ".flac", "mp3": ".mp3", "ogg": ".ogg",
              "mov,mp4,m4a,3gp,3g2,mj2": ".m4a", "aac": ".aac"}
"""ffprobe ``format_name`` → the extension a stored song gets."""
RESULT_FORMATS = {"wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg"}
"""Output formats of jobs and their media types."""
MEDIA_TYPES = {".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg",
               ".ogg": "audio/ogg", ".m4a": "audio/mp4", ".aac": "audio/aac"}
CONSENT_AUDIO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,80}\.(wav|flac|mp3|ogg|m4a)$")
VOICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MAX_ARCHIVE_MEMBERS = 64
MIN_SONG_SECONDS = 1.0
"""Shorter uploads are refused: nothing to cover (a 1-sample song used to crash the job)."""
MAX_ARCHIVE_SECONDS = 60.0
"""Wall-clock bound on unpacking one voice archive (a hostile archive is cheap to send)."""
DAMAGED = (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error,
           lzma.LZMAError, ValueError, NotImplementedError, RuntimeError)
"""What the zip/tar/gzip/bz2/xz readers raise for a damaged, truncated or unsupported
archive (bad CRC, cut-off stream, broken central directory, encrypted member, …)."""


class UploadError(AisingerError):
    """A rejected upload; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


# ------------------------------------------------------------------------------------- songs


def sniff_song(tmp: Path, max_seconds: float, name: str = "upload") -> tuple[str, object]:
    """Recognise an uploaded file by its content.

    Returns ``(extension, AudioInfo)``.  Raises :class:`UploadError` (415 for what is not an
    accepted audio file, 413 for a song over ``max_seconds``).
    """
    doc = ffprobe(tmp, "format=format_name:stream=codec_type,disposition")
    fmt = doc.get("format", {}).get("format_name", "")
    streams = doc.get("streams", [])
    if fmt not in CONTAINERS or not any(s.get("codec_type") == "audio" for s in streams):
        raise UploadError(f"{name}: not an audio file aisinger accepts (detected "
                          f"{fmt or 'no known format'}); send WAV, FLAC, MP3, OGG or M4A", 415)
    if any(s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")
           for s in streams):
        raise UploadError(f"{name}: holds a video stream; send an audio file", 415)
    ext = CONTAINERS[fmt]
    probe_path = tmp.with_name(tmp.name + ext)
    tmp.rename(probe_path)
    try:
        i = info(probe_path)
        check_info(i, float("inf"))
    except AudioError as err:
        probe_path.rename(tmp)
        raise UploadError(f"{name}: {str(err).split(': ', 1)[-1]}", 415) from None
    probe_path.rename(tmp)
    if i.duration <= 0:
        raise UploadError(f"{name}: no audio samples", 415)
    if i.duration > max_seconds:
        raise UploadError(f"{name}: {i.duration:.0f} s long; the limit is {max_seconds:.0f} s",
                          413)
    frames = _decode_check(tmp, i.channels, name)
    seconds = frames / i.sr
    # a header (WAV size, MP3 Xing/VBRI frame count) can promise more than the file holds
    if i.duration - seconds > max(0.25, 0.02 * i.duration):
        raise UploadError(f"{name}: truncated file: the header declares {i.duration:.1f} s, "
                          f"the file holds {seconds:.1f} s of audio", 415)
    if seconds < MIN_SONG_SECONDS:
        raise UploadError(f"{name}: {seconds:.3f} s of audio is too short to cover (at least "
                          f"{MIN_SONG_SECONDS:.0f} s)", 415)
    return ext, dataclasses.replace(i, frames=frames)


def _decode_check(path: Path, channels: int, name: str) -> int:
    """Decode the whole file once (ffmpeg, streamed: memory stays small) as the CLI's loader
    would: refuse undecodable data and NaN/inf samples.  Returns the true frame count."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "f32le",
           "-acodec", "pcm_f32le", "-ac", str(channels), "-"]
    import tempfile

    n = 0
    finite = True
    # stderr to a file, not a pipe: a hostile file can make ffmpeg print an error per frame,
    # and a full stderr pipe would stall it while we wait on stdout
    with tempfile.TemporaryFile() as errf:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf)
        try:
            while block := proc.stdout.read(1 << 20):
                usable = len(block) - len(block) % 4
                finite = finite and bool(np.isfinite(np.frombuffer(block[:usable], "<f4")).all())
                n += usable // 4
            rc = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        errf.seek(0)
        err = errf.read(1 << 16).decode(errors="replace").strip()
    if rc != 0:
        last = (err.splitlines() or ["?"])[-1][:160].replace(str(path), "file")
        raise UploadError(f"{name}: cannot decode the audio ({last})", 415)
    if not finite:
        raise UploadError(f"{name}: contains NaN or infinite sample values", 415)
    return n // max(1, channels)


def clean_title(title: str | None, fallback: str) -> str:
    """A display title: printable, at most 120 characters.  It is never used as a path (files
    get server-generated names), so "AC/DC - Back in Black" is kept as it is."""
    t = "".join(c for c in (title or "") if c.isprintable()).strip()
    return (t or fallback)[:120]


def scrub_paths(message: str, names: dict, roots: tuple = ()) -> str:
    """A message fit for users: the server's or worker's file paths replaced.

    ``names`` maps a path to what it is called for the user (``{song_tmp: "the song"}``);
    anything else under one of ``roots`` (a worker's cache, the temp folder) keeps only its
    file name.  Longest paths first, so a file inside a named folder gets its own name."""
    for path, label in sorted(((str(k), v) for k, v in names.items()), key=lambda kv:
                              -len(kv[0])):
        message = message.replace(path, label)
    for root in sorted({str(r) for r in roots if str(r) not in ("", "/")}, key=len,
                       reverse=True):
        message = re.sub(re.escape(root.rstrip("/")) + r"/(?:[^\s'\":,()]*/)?", "", message)
    return message


# ------------------------------------------------------------------------------------ voices


def voice_digest(voice_dir: Path) -> str:
    """SHA-256 over the kept voice files (names and bytes): a worker's cache key."""
    h = hashlib.sha256()
    for p in sorted(voice_dir.iterdir()):
        if p.is_file() and (p.name in VOICE_FILES or CONSENT_AUDIO.match(p.name)):
            h.update(p.name.encode() + b"\0")
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


def resolve_voice(voices_dir: Path, voice_id: str) -> Path:
    """The folder of voice ``voice_id``: a direct child of the voices folder, by listing."""
    if not isinstance(voice_id, str) or not VOICE_ID.match(voice_id):
        raise UploadError(f"voice {voice_id!r}: not a voice ID", 404)
    if voices_dir.is_dir():
        for p in voices_dir.iterdir():
            if p.name == voice_id and p.is_dir() and not p.is_symlink() and \
                    (p / VOICE_CONFIG).is_file():
                return p
    raise UploadError(f"voice {voice_id}: no such voice", 404)


def describe_voice(voice_dir: Path, use_scope: str) -> dict:
    """ID, name, model card and consent facts of a voice folder (for ``GET /api/voices``)."""
    card: dict = {}
    try:
        card = json.loads((voice_dir / CARD_JSON).read_text(encoding="utf-8"))
        card = card if isinstance(card, dict) else {}
    except (OSError, ValueError):
        pass
    out = {"id": voice_dir.name, "name": str(card.get("name") or voice_dir.name)[:120],
           "card": card, "consent": None, "usable": False, "problem": None}
    try:
        record = load_consent(voice_dir / CONSENT_FILE)
        out["consent"] = record.card_summary()
        for use in ("cover", "serve"):
            check_scope(record, f"{use}:{use_scope}")
        out["usable"] = True
    except AisingerError as err:  # shown to every user: the server's folders left out
        out["problem"] = scrub_paths(str(err), {voice_dir: f"voice {voice_dir.name}",
                                                voice_dir.resolve(): f"voice {voice_dir.name}"})
    return out


def list_voices(voices_dir: Path, use_scope: str) -> list[dict]:
    if not voices_dir.is_dir():
        return []
    return [describe_voice(p, use_scope) for p in sorted(voices_dir.iterdir())
            if p.is_dir() and not p.is_symlink() and VOICE_ID.match(p.name)
            and (p / VOICE_CONFIG).is_file()]


def _members(archive: Path, max_stream_bytes: int):
    """Yield ``(name, kind, size, opener)`` for a tar or zip archive (recognised by content);
    kind is ``"file"``, ``"dir"`` or ``"other"`` (links, devices, …).

    A compressed tar is one stream: reaching a member means decompressing every member before
    it, skipped or not, so the stream position (which counts them all) is bounded by
    ``max_stream_bytes``.  Zip members are read only when opened."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for zi in zf.infolist():
                mode = (zi.external_attr >> 16) & 0o170000
                kind = "dir" if zi.is_dir() else ("file" if mode in (0, 0o100000) else "other")
                yield zi.filename, kind, zi.file_size, (lambda zi=zi: zf.open(zi))
        return
    try:
        tf = tarfile.open(archive, mode="r:*")
    except (tarfile.TarError, OSError):
        raise UploadError("voice archive: not a tar or zip archive", 415) from None
    with tf:
        for ti in tf:
            if ti.offset_data + ti.size > max_stream_bytes:
                raise UploadError(f"voice archive: more than {max_stream_bytes // 2**20} MiB "
                                  "to decompress (skipped members count too)", 413)
            kind = "file" if ti.isreg() else ("dir" if ti.isdir() else "other")
            yield ti.name, kind, ti.size, (lambda ti=ti: tf.extractfile(ti))


def extract_voice(archive: Path, dest: Path, max_bytes: int,
                  max_seconds: float = MAX_ARCHIVE_SECONDS) -> Path:
    """Unpack a voice folder archive into ``dest`` (created; server-generated name).

    Accepted: a tar (optionally gz/bz2/xz) or zip of one voice folder, files at the top level
    or inside one folder.  Links, devices, absolute paths and ``..`` are refused; only the
    voice file names are written.  The work is bounded: at most ``max_bytes`` decompressed
    (for a compressed tar, members that are skipped count too) and ``max_seconds``.  A
    damaged archive (bad CRC, truncated, broken directory) is a 400 with a one-line reason.
    Raises :class:`UploadError`.
    """
    try:
        return _extract_voice(archive, dest, max_bytes, time.monotonic() + max_seconds)
    except DAMAGED as exc:
        if isinstance(exc, UploadError):  # AisingerError is not in DAMAGED; kept for clarity
            raise
        why = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise UploadError(f"voice archive: damaged or truncated ({why})", 400) from None


def _extract_voice(archive: Path, dest: Path, max_bytes: int, deadline: float) -> Path:
    import tempfile

    def in_time() -> None:
        if time.monotonic() > deadline:
            raise UploadError("voice archive: took too long to unpack", 413)

    staged: dict[str, Path] = {}
    total = n = 0
    with tempfile.TemporaryDirectory(prefix=".voice-", dir=dest.parent) as stage:
        for name, kind, size, opener in _members(archive, max_bytes):
            in_time()
            n += 1
            if n > MAX_ARCHIVE_MEMBERS:
                raise UploadError(f"voice archive: more than {MAX_ARCHIVE_MEMBERS} members", 413)
            p = PurePosixPath(name.replace("\\", "/"))
            if p.is_absolute() or ".." in p.parts:
                raise UploadError(f"voice archive: member {name[:80]!r} has an unsafe path")
            if kind == "dir":
                continue
            if kind != "file":
                raise UploadError(f"voice archive: member {name[:80]!r} is not a regular file")
            parts = [x for x in p.parts if x not in ("", ".")]
            if len(parts) > 2 or (len(parts) == 2 and parts[0] == TRAINING_DIR):
                continue  # training checkpoints etc. are not needed
            base = parts[-1]
            if base not in VOICE_FILES and not CONSENT_AUDIO.match(base):
                continue
            if base in staged:
                raise UploadError(f"voice archive: {base} appears twice")
            total += size
            if total > max_bytes:
                raise UploadError(f"voice archive: more than {max_bytes // 2**20} MiB unpacked",
                                  413)
            target = Path(stage) / base
            written = 0
            with opener() as src, open(target, "wb") as out:
                while block := src.read(1 << 20):
                    in_time()
                    written += len(block)
                    if written > size:
                        raise UploadError(f"voice archive: {base} is larger than declared")
                    out.write(block)
            if written != size:
                raise UploadError(f"voice archive: {base} is shorter than declared "
                                  "(truncated archive)")
            staged[base] = target
        if VOICE_CONFIG not in staged or VOICE_MODEL not in staged:
            raise UploadError("voice archive: no voice folder inside (config.json and "
                              "model.safetensors are required)")
        if CONSENT_FILE not in staged:
            raise UploadError("voice archive: the voice has no consent.json; a voice cannot "
                              "be served without its owner's consent record")
        dest.mkdir(parents=True)
        for base, target in staged.items():
            shutil.move(str(target), dest / base)
    return dest


def check_voice(voice_dir: Path, use_scope: str) -> dict:
    """Load the voice (weights vs config) and its consent record; the description."""
    load_voice(voice_dir)
    d = describe_voice(voice_dir, use_scope)
    if d["consent"] is None:
        raise UploadError(f"voice: {d['problem']}", 400)
    return d


def voice_archive(voice_dir: Path) -> bytes:
    """An uncompressed tar of the kept voice files (what workers download)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for p in sorted(voice_dir.iterdir()):
            if p.is_file() and not p.is_symlink() and (p.name in VOICE_FILES or
                                                       CONSENT_AUDIO.match(p.name)):
                tf.add(p, arcname=p.name, recursive=False)
    return buf.getvalue()
