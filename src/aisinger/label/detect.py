"""``aisinger detect``: is a file labelled as AI-generated, and by which voice model?

Checks both implicit labels: the AIGC metadata tag (present, parsable, one per file) and the
watermark in the audio itself (which survives re-encoding and cropping, while metadata is
easily stripped).  When both exist, ``ReservedCode1`` must carry the payload the watermark
detector reads from the audio (the *binding*).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aisinger.errors import AisingerError
from aisinger.io.audio import load
from aisinger.label import metadata as md
from aisinger.label import watermark as wm

EXIT_LABELLED = 0
EXIT_NOT_LABELLED = 1


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
        if w.present and w.payload is not None:
            who = f" voice={self.voice}" if self.voice else \
                f" voice-hash={_hex(w.voice_hash, wm.VOICE_BITS)}"
            parts.append(f"watermark z={w.score:.1f}{who} content={_hex(w.content_id, 16)}")
        elif w.present:
            parts.append(f"watermark z={w.score:.1f} (payload unreadable)")
        else:
            parts.append(f"no watermark (z={w.score:.1f})")
        if self.binding == "mismatch":
            parts.append("metadata and watermark DISAGREE")
        return "; ".join(parts)


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
    Raises:
        AisingerError: missing or undecodable file.
    """
    path = Path(path)
    audio, sr = load(path)
    try:
        meta = md.check_metadata(path)
    except AisingerError as err:
        meta = md.MetadataCheck(0, None, False, (str(err),))
    mark = wm.detect(audio, sr, key=key)
    binding = "n/a"
    if meta.label is not None and mark.payload is not None:
        recorded = md.binding_payload(meta.label)
        if recorded is not None:
            binding = "match" if recorded == mark.payload else "mismatch"
    voice = identify_voice(mark.voice_hash, known_voices)
    return DetectResult(path, meta, mark, binding, voice)
