"""Implicit label in the file metadata: the GB 45438-2025 Annex E ``AIGC`` JSON.

The label is one JSON object ``{"AIGC": {"Label", "ContentProducer", "ProduceID",
"ReservedCode1", "ContentPropagator", "PropagateID", "ReservedCode2"}}`` with string values
(printable ASCII here), stored under a key named ``AIGC``:

========  ==========================================================================
WAV       a RIFF chunk with id ``AIGC`` holding the JSON (UTF-8/ASCII, no terminator)
FLAC/OGG  a Vorbis comment ``AIGC=<json>``
MP3       an ID3v2 ``TXXX`` frame with description ``AIGC``
M4A/MP4   a freeform iTunes atom ``----:com.apple.iTunes:AIGC``
========  ==========================================================================

Readers also accept an ID3 ``TXXX:AIGC`` inside a WAV and any tag whose key contains
``AIGC`` (case-insensitive).  One label per file: writing removes every existing AIGC tag
first.  Writing never touches the source: the file is copied to a temporary sibling of the
destination, tagged there and renamed into place.

See ``docs/labelling.md`` for the field meanings and what is (un)certain about them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from aisinger.errors import AisingerError
from aisinger.io.fileio import atomic_path

AIGC_KEY = "AIGC"
"""Tag name / RIFF chunk id of the label."""
MP4_FREEFORM_KEY = "----:com.apple.iTunes:AIGC"
"""The label's atom in MP4/M4A files."""
FIELDS = ("Label", "ContentProducer", "ProduceID", "ReservedCode1", "ContentPropagator",
          "PropagateID", "ReservedCode2")
"""Annex E element names, in the standard's order."""
LABEL_AI_GENERATED = "1"
"""``Label`` value for content that is AI-generated/synthesised."""
LABEL_VALUES = ("1", "2", "3")
"""Label values seen in secondary sources (1 = AI-generated, 2 = possibly, 3 = suspected)."""
MAX_FIELD_CHARS = 256
"""Longest accepted field value (characters)."""
MAX_LABEL_BYTES = 4096
"""Longest accepted label JSON (bytes); longer tags are reported as invalid, not parsed."""
BINDING_PREFIX = "aisinger-wm1"
"""``ReservedCode1`` format tag: ``aisinger-wm1:<payload hex>:<16 hex digest>``."""
DEFAULT_PRODUCER = "aisinger"
"""``ContentProducer`` of a local run (there is no registered provider code)."""
WRITE_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".m4a", ".mp4", ".aac")


def _check_text(name: str, value: str) -> str:
    if not isinstance(value, str):
        raise AisingerError(f"AIGC label field {name} must be a string, got {type(value).__name__}")
    if len(value) > MAX_FIELD_CHARS:
        raise AisingerError(f"AIGC label field {name} is {len(value)} characters long; "
                            f"the limit is {MAX_FIELD_CHARS}")
    if any(not (0x20 <= ord(c) < 0x7F) for c in value):
        raise AisingerError(f"AIGC label field {name} must be printable ASCII: {value[:40]!r}")
    return value


@dataclass(frozen=True)
class AigcLabel:
    """The seven Annex E elements (all strings, printable ASCII)."""

    Label: str = LABEL_AI_GENERATED
    ContentProducer: str = DEFAULT_PRODUCER
    ProduceID: str = ""
    ReservedCode1: str = ""
    ContentPropagator: str = ""
    PropagateID: str = ""
    ReservedCode2: str = ""

    def __post_init__(self) -> None:
        for name in FIELDS:
            _check_text(name, getattr(self, name))

    def to_dict(self) -> dict:
        """``{"AIGC": {...}}`` in the standard's field order."""
        return {AIGC_KEY: {k: getattr(self, k) for k in FIELDS}}

    def to_json(self) -> str:
        """Compact JSON of :meth:`to_dict` (ASCII only)."""
        return json.dumps(self.to_dict(), ensure_ascii=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> AigcLabel:
        """Parse a label (wrapped ``{"AIGC": {...}}`` or bare ``{...}``); raises AisingerError."""
        if isinstance(text, bytes):
            if len(text) > MAX_LABEL_BYTES:
                raise AisingerError(f"AIGC label is {len(text)} bytes; the limit is "
                                    f"{MAX_LABEL_BYTES}")
            text = text.decode("utf-8", errors="strict")
        if len(text) > MAX_LABEL_BYTES:
            raise AisingerError(f"AIGC label is {len(text)} characters; the limit is "
                                f"{MAX_LABEL_BYTES}")
        try:
            data = json.loads(text.strip().rstrip("\0"))
        except (ValueError, RecursionError) as err:
            raise AisingerError(f"AIGC label is not valid JSON ({err})") from None
        if isinstance(data, dict) and set(data) == {AIGC_KEY}:
            data = data[AIGC_KEY]
        if not isinstance(data, dict):
            raise AisingerError("AIGC label is not a JSON object")
        unknown = sorted(set(data) - set(FIELDS))
        if unknown:
            raise AisingerError(f"AIGC label has unknown fields: {', '.join(unknown)[:120]}")
        missing = [k for k in FIELDS if k not in data]
        if missing:
            raise AisingerError(f"AIGC label lacks fields: {', '.join(missing)}")
        return cls(**{k: data[k] for k in FIELDS})


def new_produce_id() -> str:
    """A fresh unique content number for ``ProduceID`` (32 hex digits, UUID4)."""
    return uuid.uuid4().hex


def binding_code(payload: bytes, produce_id: str, producer: str) -> str:
    """``ReservedCode1`` binding the label to the audio's watermark.

    Format ``aisinger-wm1:<payload hex>:<first 16 hex of SHA-256(payload|ProduceID|producer)>``.
    Verified by :func:`check_binding` against the payload the detector reads from the audio.
    It is an integrity check against mismatched or edited labels, not a signature: there
    is no secret, so anyone can compute it.
    """
    digest = hashlib.sha256(payload + b"|" + produce_id.encode() + b"|" + producer.encode())
    return f"{BINDING_PREFIX}:{payload.hex()}:{digest.hexdigest()[:16]}"


def binding_payload(label: AigcLabel) -> bytes | None:
    """The watermark payload recorded in ``ReservedCode1``, or None when absent/invalid."""
    parts = label.ReservedCode1.split(":")
    if len(parts) != 3 or parts[0] != BINDING_PREFIX:
        return None
    try:
        payload = bytes.fromhex(parts[1])
    except ValueError:
        return None
    if binding_code(payload, label.ProduceID, label.ContentProducer) != label.ReservedCode1:
        return None
    return payload


def make_label(payload: bytes | None = None, *, producer: str = DEFAULT_PRODUCER,
               produce_id: str | None = None) -> AigcLabel:
    """A fresh label (``Label`` = "1"); ``ReservedCode1`` binds it to ``payload`` if given."""
    produce_id = produce_id or new_produce_id()
    code1 = binding_code(payload, produce_id, producer) if payload is not None else ""
    return AigcLabel(LABEL_AI_GENERATED, producer, produce_id, code1, "", "", "")


# ----------------------------------------------------------------------------------------------
# reading


def _is_aigc_key(key: str) -> bool:
    return "aigc" in str(key).lower()


def _text_of(value) -> list[str]:
    """Text items of a mutagen tag value (lists, ID3 frames, MP4 freeform bytes)."""
    if hasattr(value, "text"):  # ID3 frame
        return [str(t) for t in value.text]
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, (bytes, bytearray)):
            out.append(bytes(item).decode("utf-8", errors="replace"))
        else:
            out.append(str(item))
    return out


def _riff_chunks(path: Path) -> list[str]:
    from mutagen._riff import RiffFile

    found = []
    with open(path, "rb") as f:
        try:
            riff = RiffFile(f)
        except Exception:
            return []
        for chunk in riff.root.subchunks():
            if _is_aigc_key(chunk.id):
                if chunk.data_size > MAX_LABEL_BYTES:
                    found.append("<oversized AIGC chunk>")
                else:
                    found.append(chunk.read().decode("utf-8", errors="replace").rstrip("\0"))
    return found


def read_raw_labels(path: str | Path) -> list[str]:
    """Every AIGC tag value in ``path`` (raw strings), in file order; ``[]`` if none.

    Raises AisingerError when the file is missing or not a tagged audio format mutagen knows.
    """
    path = Path(path)
    if not path.is_file():
        raise AisingerError(f"{path}: file not found")
    import mutagen

    found: list[str] = []
    if path.suffix.lower() == ".wav" or _head(path)[:4] == b"RIFF":
        found += _riff_chunks(path)
    try:
        f = mutagen.File(path)
    except Exception as err:  # mutagen raises many types for corrupt input
        raise AisingerError(f"{path}: cannot read metadata ({type(err).__name__})") from None
    tags = getattr(f, "tags", None) if f is not None else None
    if tags is not None:
        items = tags.items() if hasattr(tags, "items") else []
        for key, value in items:
            if _is_aigc_key(key) or (hasattr(value, "desc") and _is_aigc_key(value.desc)):
                found += _text_of(value)
    return found


def _head(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(12)


@dataclass(frozen=True)
class MetadataCheck:
    """What :func:`check_metadata` found.

    Attributes:
        found: number of AIGC tags in the file.
        label: the parsed label (first valid one), or None.
        valid: exactly one label, parsable, Label is one of the known values.
        problems: one line per problem.
    """

    found: int
    label: AigcLabel | None
    valid: bool
    problems: tuple[str, ...]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["label"] = self.label.to_dict() if self.label else None
        d["problems"] = list(self.problems)
        return d


def check_metadata(path: str | Path) -> MetadataCheck:
    """Read and validate the AIGC label(s) of ``path``."""
    raws = read_raw_labels(path)
    problems, label = [], None
    for raw in raws:
        try:
            parsed = AigcLabel.from_json(raw)
        except AisingerError as err:
            problems.append(str(err))
            continue
        if label is None:
            label = parsed
    distinct = {r.strip() for r in raws}
    if len(raws) > 1 and len(distinct) > 1:
        problems.append(f"{len(raws)} different AIGC labels (the standard wants one per file)")
    if label is not None and label.Label not in LABEL_VALUES:
        problems.append(f"unknown Label value {label.Label!r}")
    valid = label is not None and not problems
    return MetadataCheck(len(raws), label, valid, tuple(problems))


# ----------------------------------------------------------------------------------------------
# writing


def _tag_wav(path: Path, text: str) -> None:
    import mutagen.wave
    from mutagen._riff import RiffFile

    with open(path, "r+b") as f:
        riff = RiffFile(f)
        for chunk in list(riff.root.subchunks()):
            if _is_aigc_key(chunk.id):
                chunk.delete()
        riff.insert_chunk(AIGC_KEY, text.encode("ascii"))
    # an ID3 chunk (mutagen's WAVE tags) might hold an older label: drop its AIGC frames

    w = mutagen.wave.WAVE(path)
    if w.tags is not None:
        keys = [k for k, v in w.tags.items() if _is_aigc_key(k) or _is_aigc_key(
            getattr(v, "desc", ""))]
        if keys:
            for k in keys:
                del w.tags[k]
            w.save()


def _tag_vorbis(path: Path, text: str, kind: str) -> None:
    from mutagen.flac import FLAC
    from mutagen.oggvorbis import OggVorbis

    f = (FLAC if kind == "flac" else OggVorbis)(path)
    if f.tags is None:
        f.add_tags()
    for key in [k for k in f.tags.keys() if _is_aigc_key(k)]:
        del f.tags[key]
    f.tags[AIGC_KEY] = [text]
    f.save()


def _tag_mp3(path: Path, text: str) -> None:
    from mutagen.id3 import ID3, TXXX, ID3NoHeaderError

    try:
        tags = ID3(path)
    except ID3NoHeaderError:
        tags = ID3()
    for key in [k for k, v in tags.items() if _is_aigc_key(k) or _is_aigc_key(
            getattr(v, "desc", ""))]:
        del tags[key]
    tags.add(TXXX(encoding=0, desc=AIGC_KEY, text=[text]))  # encoding 0 = Latin-1 (ASCII)
    tags.save(path, v2_version=4)


def _tag_mp4(path: Path, text: str) -> None:
    from mutagen.mp4 import MP4, AtomDataType, MP4FreeForm

    f = MP4(path)
    if f.tags is None:
        f.add_tags()
    for key in [k for k in f.tags.keys() if _is_aigc_key(k)]:
        del f.tags[key]
    f.tags[MP4_FREEFORM_KEY] = [MP4FreeForm(text.encode("ascii"), AtomDataType.UTF8)]
    f.save()


def tag_in_place(path: str | Path, label: AigcLabel) -> None:
    """Write ``label`` into ``path`` itself (used on a private temporary copy)."""
    path = Path(path)
    ext = path.suffix.lower()
    text = label.to_json()
    try:
        if ext == ".wav":
            _tag_wav(path, text)
        elif ext == ".flac":
            _tag_vorbis(path, text, "flac")
        elif ext in (".ogg", ".oga"):
            _tag_vorbis(path, text, "ogg")
        elif ext == ".mp3":
            _tag_mp3(path, text)
        elif ext in (".m4a", ".mp4", ".aac"):
            _tag_mp4(path, text)
        else:
            raise AisingerError(f"{path}: cannot label '{ext}' files; use one of "
                                f"{', '.join(WRITE_SUFFIXES)}")
    except AisingerError:
        raise
    except Exception as err:
        raise AisingerError(f"{path}: cannot write the AIGC label ({type(err).__name__}: "
                            f"{str(err)[:120]})") from None


def write_label(source: str | Path, label: AigcLabel, output: str | Path | None = None) -> Path:
    """Copy ``source`` to ``output`` (default: ``source`` itself) with ``label`` in its metadata.

    Atomic: the copy is tagged under a temporary name in the destination folder and renamed
    into place; ``source`` is never modified unless it is also the destination (then it is
    replaced atomically, never half-written).
    """
    source = Path(source)
    output = Path(output) if output is not None else source
    if not source.is_file():
        raise AisingerError(f"{source}: file not found")
    if output.suffix.lower() != source.suffix.lower():
        raise AisingerError(f"{output}: must keep the format of {source} "
                            f"('{source.suffix}'); re-encode with `aisinger label` instead")

    with atomic_path(output) as tmp:
        shutil.copyfile(source, tmp)
        tag_in_place(tmp, label)
    return output
