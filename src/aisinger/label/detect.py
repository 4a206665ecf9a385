"""``aisinger detect``: is a file labelled as AI-generated, and by which voice model?

Checks both implicit labels: the AIGC metadata tag (present, parsable, one per file) and the
watermark in the audio itself (which survives re-encoding and cropping, while metadata is
easily stripped).  When both exist, ``ReservedCode1`` must carry the payload the watermark
detector reads from the audio (the *binding*).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aisinger.errors import AisingerError
from aisinger.io import audio
from aisinger.label import metadata as md
from aisinger.label import watermark as wm

EXIT_LABELLED = 0
EXIT_NOT_LABELLED = 1
DETECT_MAX_S = 20 * 60.0
"""Longer files are checked over their first this many seconds (decoded as 16 kHz mono, so
memory stays bounded); the result says so."""


@dataclass(frozen=True)
class DetectResult:
    """What :func:`detect_file` found in one file.

    Attributes:
        path: the file.
        metadata: the AIGC metadata check.
        watermark: the watermark detection result.
        binding: ``"match"`` (ReservedCode1 names the payload found in the audio),
            ``"mismatch"``, or ``"n/a"`` (no readable binding or no readable payload).
        voice: the known voice whose ID hash matches the payload's, if any.
        labelled: the metadata label is valid or the watermark is present.
    """

    path: Path
    metadata: md.MetadataCheck
    watermark: wm.WatermarkResult
    binding: str
    voice: str | None
    checked_s: float | None = None

    @property
    def labelled(self) -> bool:
        return self.metadata.valid or self.watermark.present

    @property
    def exit_code(self) -> int:
        """CLI exit status: 0 when labelled, 1 when not."""
        return EXIT_LABELLED if self.labelled else EXIT_NOT_LABELLED

    def to_dict(self) -> dict:
        """JSON-friendly form (for ``aisinger detect --json``)."""
        w = self.watermark
        return {
            "path": str(self.path),
            "labelled": self.labelled,
            "metadata": self.metadata.to_dict(),
            "watermark": {**w.to_dict(), "voice_hash": _hex(w.voice_hash, wm.VOICE_BITS),
                          "content_id": _hex(w.content_id, wm.CONTENT_BITS)},
            "binding": self.binding,
            "voice": self.voice,
            "edit": _edit_dict(w),
            "checked_seconds": self.checked_s,
        }

    def summary(self) -> str:
        """One line for the terminal."""
        parts = [f"{self.path}: {'LABELLED' if self.labelled else 'not labelled'}"]
        m = self.metadata
        if m.valid and m.label is not None:
            parts.append(f"metadata AIGC Label={m.label.Label} ProduceID={m.label.ProduceID}")
        elif m.found:
            parts.append(f"metadata AIGC invalid ({'; '.join(m.problems)[:100]})")
        else:
            parts.append("no metadata label")
        w = self.watermark
        edit = _edit_text(w)
        if w.present and w.payload is not None:
            who = f" voice={self.voice}" if self.voice else \
                f" voice-hash={_hex(w.voice_hash, wm.VOICE_BITS)}"
            parts.append(f"watermark v{w.version} z={w.score:.1f}{who} "
                         f"content={_hex(w.content_id, 16)}{edit}")
        elif w.present:
            parts.append(f"watermark v{w.version} z={w.score:.1f} (payload unreadable){edit}")
        elif w.reason == "too short":
            parts.append(f"watermark: too short to tell ({w.seconds:.1f} s; needs "
                         f"≥ {wm.V3_MIN_DETECT_S:.0f} s)")
        elif w.reason == "silent":
            parts.append("watermark: silent audio, nothing to check")
        else:
            parts.append(f"no watermark (z={w.score:.1f})")
        if self.checked_s is not None:
            parts.append(f"checked the first {self.checked_s / 60:.0f} min only")
        if self.binding == "mismatch":
            parts.append("metadata and watermark DISAGREE")
        return "; ".join(parts)


def _edit_dict(w: wm.WatermarkResult) -> dict | None:
    """The speed / tempo / pitch change the mark was found under (``None`` without a mark)."""
    if not w.present:
        return None
    return {"kind": w.edit, "speed_factor": round(w.speed_factor, 4),
            "time_scale": round(w.time_scale, 4), "pitch_scale": round(w.pitch_scale, 4),
            "pitch_semitones": round(w.pitch_semitones, 2)}


def _edit_text(w: wm.WatermarkResult) -> str:
    if not w.present or w.edit == "none":
        return ""
    if w.edit == "speed":
        return f" (found sped ×{w.speed_factor:.3f})"
    if w.edit == "tempo":
        return f" (found time-stretched ×{w.speed_factor:.3f})"
    if w.edit == "pitch":
        return f" (found pitch-shifted {w.pitch_semitones:+.2f} semitones)"
    return f" (found at tempo ×{w.speed_factor:.3f}, pitch {w.pitch_semitones:+.2f} semitones)"


def _load_for_detection(path: Path) -> tuple[np.ndarray, int, float | None]:
    """``(audio, sr, checked_s)``: the whole file, or for files longer than
    :data:`DETECT_MAX_S` its first part decoded as 16 kHz mono (``checked_s`` seconds)."""
    info = audio.info(path)
    if info.duration <= DETECT_MAX_S:
        x, sr = audio.load(path, max_seconds=DETECT_MAX_S)
        return x, sr, None
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0",
           "-t", f"{DETECT_MAX_S:.0f}", "-f", "f32le", "-acodec", "pcm_f32le", "-ac", "1",
           "-ar", str(wm.WM_SR), "-"]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        first = (proc.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
        raise AisingerError(f"{path}: cannot decode audio ({first[:200]})")
    x = np.frombuffer(proc.stdout, dtype="<f4").copy()
    if x.size == 0:
        raise AisingerError(f"{path}: zero-length audio (no samples)")
    if not np.isfinite(x).all():
        raise AisingerError(f"{path}: contains NaN or infinite sample values")
    return x, wm.WM_SR, DETECT_MAX_S


def _hex(value: int | None, bits: int) -> str | None:
    return None if value is None else f"{value:0{(bits + 3) // 4}x}"


def identify_voice(voice_hash: int | None, known_voices: dict[str, str] | None) -> str | None:
    """Name of the known voice whose ID hashes to ``voice_hash``.

    Args:
        known_voices: ``{voice_id: display name}`` (e.g. the local voice folders).
    """
    if voice_hash is None or not known_voices:
        return None
    hits = [name for vid, name in known_voices.items() if wm.voice_hash(vid) == voice_hash]
    return hits[0] if len(hits) == 1 else (" or ".join(sorted(hits)) if hits else None)


def detect_file(path: str | Path, known_voices: dict[str, str] | None = None,
                key: str = wm.DEFAULT_KEY) -> DetectResult:
    """Check ``path`` for the AIGC metadata label and the watermark.

    Args:
        path: any audio file aisinger can read (WAV, FLAC, OGG, MP3, M4A, ...).
        known_voices: ``{voice_id: display name}`` used to name the voice model.
        key: watermark key (the public default unless a deployment chose its own).
    Files shorter than :data:`~aisinger.label.watermark.V3_MIN_DETECT_S` or silent give
    ``watermark.reason`` ``"too short"`` / ``"silent"`` (not labelled unless the metadata
    says so); files longer than :data:`DETECT_MAX_S` are checked over their first part.

    Raises:
        AisingerError: missing or undecodable file.
    """
    path = Path(path)
    samples, sr, checked = _load_for_detection(path)
    try:
        meta = md.check_metadata(path)
    except AisingerError as err:
        meta = md.MetadataCheck(0, None, False, (str(err),))
    mark = wm.detect(samples, sr, key=key)
    binding = "n/a"
    if meta.label is not None and mark.payload is not None:
        recorded = md.binding_payload(meta.label)
        if recorded is not None:
            binding = "match" if recorded == mark.payload else "mismatch"
    voice = identify_voice(mark.voice_hash, known_voices)
    return DetectResult(path, meta, mark, binding, voice, checked)
