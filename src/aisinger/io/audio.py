"""Audio I/O: reading, checking, resampling and atomic writing.

Conventions (used everywhere in aisinger):

* Samples are ``float32`` in [-1, 1] (values beyond are kept, never silently clipped on read).
* Multi-channel audio has shape ``(channels, samples)``; mono audio requested with
  ``mono=True`` has shape ``(samples,)`` (like librosa).
* **Mono/stereo rules.**  ``mono=True`` averages the channels; for 5.1 input (6 channels, order
  L R C LFE Ls Rs as WAV/FLAC/ffmpeg deliver it) the LFE channel is dropped and C, Ls, Rs are
  mixed with ITU-R BS.775 weights (−3 dB) before averaging.  :func:`to_stereo` applies the same
  ITU downmix for 5.1 and duplicates mono.  Other layouts of > 2 channels are averaged.
* Resampling is always explicit (``sr=`` on load, or :func:`resample`), done with soxr (VHQ).
* Reading: WAV/FLAC/OGG/MP3 with libsndfile (``soundfile``); anything else (M4A/AAC, …) is
  decoded by ffmpeg.  Inputs are opened read-only and never modified.
* Writing: by extension — ``.wav`` (32-bit float by default), ``.flac`` (24-bit), ``.mp3``
  (libsndfile's LAME, ~192 kbit/s VBR), ``.ogg`` (Vorbis).  Every write goes to a temp file in
  the target folder and is renamed into place, so a crash never leaves a half-written file
  under the real name.

Every unacceptable input raises :class:`~aisinger.errors.AudioError` with one line naming the
file and the problem: missing file, not audio, truncated, zero-length, NaN/inf samples,
sample rate outside [8 kHz, 384 kHz], more than 8 channels, or longer than the limit
(default 20 minutes; ``AISINGER_MAX_MINUTES`` or ``max_seconds=`` changes it).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from aisinger.errors import AudioError
from aisinger.io.fileio import atomic_path

log = logging.getLogger("aisinger")

MIN_SR = 8_000
MAX_SR = 384_000
MAX_CHANNELS = 8
DEFAULT_MAX_SECONDS = 20 * 60
ITU_SURROUND_GAIN = 10 ** (-3 / 20)  # ITU-R BS.775 downmix weight for centre/surround (-3 dB)
WRITE_EXTENSIONS = {".wav": ("WAV", "FLOAT"), ".flac": ("FLAC", "PCM_24"),
                    ".mp3": ("MP3", "MPEG_LAYER_III"), ".ogg": ("OGG", "VORBIS")}
SOUNDFILE_READ_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff"}


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, read from its header without decoding it."""

    path: Path
    sr: int
    channels: int
    frames: int

    @property
    def duration(self) -> float:
        """Duration in seconds."""
        return self.frames / self.sr if self.sr else 0.0


def max_seconds_default() -> float:
    """The input duration limit in seconds (``AISINGER_MAX_MINUTES``, default 20 min)."""
    env = os.environ.get("AISINGER_MAX_MINUTES")
    try:
        return float(env) * 60 if env else DEFAULT_MAX_SECONDS
    except ValueError:
        raise AudioError(f"AISINGER_MAX_MINUTES={env!r} is not a number") from None


# ----------------------------------------------------------------------------------------------
# reading


def _wav_truncated(path: Path) -> bool:
    """True when a RIFF/WAVE file declares more sample data than it contains.

    libsndfile silently reads such files short, so this is checked from the header.  Streamed
    WAVs that leave the size field at 0 or 0xFFFFFFFF are not flagged.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
            return False
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            cid, csize = struct.unpack("<4sI", f.read(8))
            if cid == b"data":
                if csize in (0, 0xFFFFFFFF) or head[:4] == b"RF64":
                    return False
                return pos + 8 + csize > size
            pos += 8 + csize + (csize & 1)
        return False


FFPROBE_TIMEOUT_S = 60.0
"""How long one ffprobe call may take (a hostile file must not hang a reader)."""


def ffprobe(path: str | Path, entries: str, stream: str | None = None) -> dict:
    """ffprobe's JSON report on ``path``: ``-show_entries entries`` (e.g.
    ``"stream=sample_rate,channels"``), only the stream ``stream`` selects (e.g. ``"a:0"``) when
    given.  Returns ``{}`` when ffprobe cannot read the file.

    The one ffprobe wrapper: :func:`info` reads headers libsndfile does not know with it, and
    the request service recognises uploads by their content with it.  Raises
    :class:`AudioError` when ffprobe is not installed or does not answer within
    :data:`FFPROBE_TIMEOUT_S`.
    """
    if shutil.which("ffprobe") is None:
        raise AudioError(f"{path}: this format needs ffmpeg, which is not installed "
                         "(run scripts/setup.sh or apt-get install ffmpeg)")
    cmd = ["ffprobe", "-v", "error", *(["-select_streams", stream] if stream else []),
           "-show_entries", entries, "-of", "json", str(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=FFPROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise AudioError(f"{path}: ffprobe did not finish within {FFPROBE_TIMEOUT_S:.0f} s "
                         "(damaged or hostile file?)") from None
    try:
        return json.loads(proc.stdout or "{}") if proc.returncode == 0 else {}
    except ValueError:
        return {}


def _ffprobe_info(path: Path) -> AudioInfo:
    data = ffprobe(path, "stream=sample_rate,channels,duration:format=duration", stream="a:0")
    try:
        stream = data["streams"][0]
    except (KeyError, IndexError):
        raise AudioError(f"{path}: not an audio file (no decodable audio stream)") from None
    sr = int(stream.get("sample_rate", 0) or 0)
    duration = float(stream.get("duration") or data.get("format", {}).get("duration") or 0)
    return AudioInfo(path, sr, int(stream.get("channels", 0) or 0), int(round(duration * sr)))


def info(path: str | Path) -> AudioInfo:
    """Read sample rate, channel count and length from the header (no decoding).

    Raises AudioError for a missing file, an empty file, a non-audio file or a truncated WAV.
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: file not found")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, expected an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")

    if path.suffix.lower() in SOUNDFILE_READ_EXTENSIONS or path.suffix == "":
        try:
            i = sf.info(_sf_name(path))
            if _wav_truncated(path):
                raise AudioError(f"{path}: truncated file (the header declares more audio "
                                 "than the file contains)")
            return AudioInfo(path, int(i.samplerate), int(i.channels), int(i.frames))
        except sf.LibsndfileError:
            pass  # fall through to ffmpeg, which knows more containers
    return _ffprobe_info(path)


def check_info(i: AudioInfo, max_seconds: float) -> None:
    """Raise :class:`AudioError` when ``i`` is outside what aisinger reads (rate, channels,
    ``max_seconds``)."""
    if i.sr < MIN_SR or i.sr > MAX_SR:
        raise AudioError(f"{i.path}: sample rate {i.sr} Hz is outside the supported range "
                         f"{MIN_SR}–{MAX_SR} Hz")
    if i.channels < 1:
        raise AudioError(f"{i.path}: no audio channels")
    if i.channels > MAX_CHANNELS:
        raise AudioError(f"{i.path}: {i.channels} channels; at most {MAX_CHANNELS} are supported")
    if i.duration > max_seconds:
        raise AudioError(f"{i.path}: {i.duration / 60:.1f} min long; the limit is "
                         f"{max_seconds / 60:.1f} min (set AISINGER_MAX_MINUTES to raise it)")


def _decode_soundfile(path: Path) -> np.ndarray:
    try:
        data, _ = sf.read(_sf_name(path), dtype="float32", always_2d=True)
    except sf.LibsndfileError as err:
        msg = str(err).lower()
        if "lost sync" in msg or "unexpected end" in msg or "truncat" in msg:
            raise AudioError(f"{path}: truncated or corrupt audio data ({err})") from None
        raise AudioError(f"{path}: cannot decode audio ({err})") from None
    return data.T


def _decode_ffmpeg(path: Path, i: AudioInfo) -> np.ndarray:
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0",
           "-f", "f32le", "-acodec", "pcm_f32le", "-ac", str(i.channels), "-ar", str(i.sr), "-"]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        first = (proc.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
        raise AudioError(f"{path}: cannot decode audio ({first[:200]})")
    data = np.frombuffer(proc.stdout, dtype="<f4")
    usable = len(data) - len(data) % i.channels
    return data[:usable].reshape(-1, i.channels).T.copy()


def load(path: str | Path, sr: int | None = None, mono: bool = False,
         max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Read an audio file as float32.

    Args:
        path: WAV, FLAC, OGG, MP3, M4A/AAC or anything ffmpeg decodes.
        sr: resample to this rate (Hz); ``None`` keeps the file's rate.
        mono: downmix (see the module's mono/stereo rules) and return shape ``(samples,)``.
        max_seconds: refuse longer files (default: 20 min, ``AISINGER_MAX_MINUTES``).
    Returns:
        ``(audio, sr)`` with audio of shape ``(channels, samples)`` or ``(samples,)``.
    Raises:
        AudioError: one line naming the file and the problem.
    """
    path = Path(path)
    i = info(path)
    check_info(i, max_seconds_default() if max_seconds is None else max_seconds)
    if path.suffix.lower() in SOUNDFILE_READ_EXTENSIONS or path.suffix == "":
        try:
            audio = _decode_soundfile(path)
        except AudioError:
            if path.suffix.lower() not in (".mp3", ".ogg", ".oga"):
                raise
            audio = _decode_ffmpeg(path, i)  # libsndfile's mp3/ogg support is partial
    else:
        audio = _decode_ffmpeg(path, i)
    if audio.shape[-1] == 0:
        raise AudioError(f"{path}: zero-length audio (no samples)")
    _warn_if_short(path, i, audio.shape[-1])
    if not np.isfinite(audio).all():
        raise AudioError(f"{path}: contains NaN or infinite sample values")
    if mono:
        audio = to_mono(audio)
    if sr is not None and sr != i.sr:
        audio = resample(audio, i.sr, sr)
    return audio, (sr or i.sr)


TRUNCATION_WARN_SHARE = 0.02
"""Decoded audio shorter than the header's length by more than this share (and by more than
``TRUNCATION_WARN_S``) is reported as truncated: lossy streams (mp3) cut short decode without
an error, so the header (e.g. the Xing frame count) is the only witness."""
TRUNCATION_WARN_S = 0.1


def _warn_if_short(path: Path, i: AudioInfo, decoded: int) -> None:
    missing = i.frames - decoded
    if i.frames > 0 and missing > TRUNCATION_WARN_SHARE * i.frames and \
            missing > TRUNCATION_WARN_S * i.sr:
        log.warning("warning: %s looks truncated: its header declares %.2f s but only %.2f s "
                    "could be decoded (%.2f s, %.0f%% missing); only the decoded part is used",
                    path, i.duration, decoded / i.sr, missing / i.sr, 100.0 * missing / i.frames)


# ----------------------------------------------------------------------------------------------
# channel rules and resampling


def _itu_downmix_51(audio: np.ndarray) -> np.ndarray:
    """5.1 (L R C LFE Ls Rs) → stereo, ITU-R BS.775 weights, LFE dropped."""
    left, right, centre, _lfe, ls, rs = audio
    g = ITU_SURROUND_GAIN
    return np.stack([left + g * centre + g * ls, right + g * centre + g * rs]).astype(np.float32)


def to_stereo(audio: np.ndarray) -> np.ndarray:
    """Return ``(2, samples)``: mono is duplicated, 5.1 ITU-downmixed, others averaged."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        return np.stack([audio, audio])
    if audio.shape[0] == 2:
        return audio
    if audio.shape[0] == 1:
        return np.concatenate([audio, audio])
    if audio.shape[0] == 6:
        return _itu_downmix_51(audio)
    mean = audio.mean(axis=0)
    return np.stack([mean, mean])


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Return ``(samples,)``: the mean of the channels (5.1: of its ITU stereo downmix)."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        return audio
    if audio.shape[0] == 6:
        audio = _itu_downmix_51(audio)
    return audio.mean(axis=0).astype(np.float32)


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample along the last axis with soxr (very high quality); float32 out."""
    audio = np.asarray(audio, dtype=np.float32)
    if sr_in == sr_out:
        return audio

    if audio.ndim == 1:
        return soxr.resample(audio, sr_in, sr_out, quality="VHQ").astype(np.float32)
    out = soxr.resample(audio.T, sr_in, sr_out, quality="VHQ")
    return np.ascontiguousarray(out.T, dtype=np.float32)


# ----------------------------------------------------------------------------------------------
# writing


def _sf_name(path: str | Path) -> bytes:
    """``path`` as bytes for soundfile: it encodes str names strictly, which fails on file
    names that are not valid UTF-8 (kept by Python as surrogate escapes)."""
    return os.fsencode(path)


def encode(path: str | Path, audio: np.ndarray, sr: int, subtype: str | None = None) -> Path:
    """Encode ``audio`` into ``path`` in place (not atomic: for a temp path of a writer such
    as :func:`save` or :func:`aisinger.label.write_labelled`).  Format by extension."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in WRITE_EXTENSIONS:
        raise AudioError(f"{path}: cannot write '{ext or 'no extension'}'; use one of "
                         f"{', '.join(WRITE_EXTENSIONS)}")
    if not MIN_SR <= int(sr) <= MAX_SR:
        raise AudioError(f"{path}: refusing to write at {sr} Hz; the supported range is "
                         f"{MIN_SR}–{MAX_SR} Hz")
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2 and audio.shape[0] > audio.shape[1]:
        raise AudioError(f"{path}: audio of shape {audio.shape} looks like (samples, channels); "
                         "aisinger uses (channels, samples)")
    if not np.isfinite(audio).all():
        raise AudioError(f"{path}: refusing to write NaN/inf samples")
    fmt, default_subtype = WRITE_EXTENSIONS[ext]
    data = audio if audio.ndim == 1 else audio.T
    if fmt in ("MP3", "OGG"):
        data = np.clip(data, -1.0, 1.0)  # lossy encoders cannot carry > 0 dBFS
    sf.write(_sf_name(path), data, sr, format=fmt, subtype=subtype or default_subtype)
    return path


def save(path: str | Path, audio: np.ndarray, sr: int, subtype: str | None = None) -> Path:
    """Write ``audio`` (``(samples,)`` or ``(channels, samples)``) to ``path`` atomically.

    The format follows the extension (.wav float32, .flac 24-bit, .mp3, .ogg); ``subtype``
    overrides the sample format (e.g. ``"PCM_16"``).  Parent folders are created.  The sample
    rate must be in the range aisinger reads (8–384 kHz).
    """
    path = Path(path)
    if path.suffix.lower() not in WRITE_EXTENSIONS:
        raise AudioError(f"{path}: cannot write '{path.suffix.lower() or 'no extension'}'; use "
                         f"one of {', '.join(WRITE_EXTENSIONS)}")
    with atomic_path(path) as tmp:
        encode(tmp, audio, sr, subtype)
    return path


def _same(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name the same file: same resolved path (symlinks followed) or
    the same inode (hard links, bind mounts)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def check_outputs_not_inputs(outputs, inputs, folders=()) -> None:
    """Refuse before any work when an output would overwrite an input (inputs are never
    modified).

    outputs: files that will be written (None entries are skipped); inputs: files that are
    read (missing ones are ignored); folders: folders that will be replaced whole (an input inside one is refused).
    Symlinks are resolved and hard links detected.  The error names both paths.
    """
    ins = [Path(i) for i in inputs if i is not None and Path(i).exists()]
    for o in outputs:
        if o is None:
            continue
        o = Path(o)
        for i in ins:
            if _same(o, i):
                raise AudioError(f"{o}: output would overwrite the input {i}; choose another "
                                 "path")
    for d in folders:
        d = Path(d)
        for i in ins:
            if _inside(i, d):
                raise AudioError(f"{d}: output folder would replace the input {i}; choose "
                                 "another path")


def check_output_not_input(output: str | Path, *inputs: str | Path) -> None:
    """Refuse to write an output over one of the inputs (inputs are never modified)."""
    check_outputs_not_inputs([output], inputs)
