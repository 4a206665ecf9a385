"""Consent records: a voice may only be trained or used with its owner's documented consent.

A consent record is a small JSON file (schema ``aisinger.consent/1``, documented in
``docs/labelling.md``)::

    {
      "schema": "aisinger.consent/1",
      "voice_owner": "Jane Doe",
      "collected_by": "Studio X (J. Smith)",
      "date": "2026-03-01",
      "scope": "non-commercial",
      "permitted_uses": ["train", "convert", "cover"],
      "statement": "I, Jane Doe, agree that ...",
      "audio_file": null,
      "self_consent": false
    }

* ``scope``: ``private`` < ``non-commercial`` < ``commercial``; a use is allowed up to the
  recorded scope.
* ``permitted_uses``: a non-empty subset of :data:`USES`.
* Either ``statement`` (the consent text) or ``audio_file`` (a relative path, next to the
  record, of the owner reading a consent sentence) or both must be given.

Loading is defensive: at most :data:`MAX_RECORD_BYTES` are read, strict types (no coercion),
unknown keys, duplicate keys, control characters and over-long strings are rejected, and
text fields are plain data (stored, never interpreted or executed).  Every problem raises
:class:`~aisinger.errors.AisingerError` with one line naming the file.
"""

from __future__ import annotations

import datetime as _dt
import json
import unicodedata
import uuid
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Annotated, Literal

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, StringConstraints,
                      ValidationError, model_validator)

from aisinger.errors import AisingerError
from aisinger.io.fileio import write_text
from aisinger.layout import CONSENT_FILE

SCHEMA = "aisinger.consent/1"
"""Value of the ``schema`` field this version reads and writes."""
MAX_RECORD_BYTES = 64 * 1024
"""Largest consent file accepted (bytes)."""
SCOPES = ("private", "non-commercial", "commercial")
"""Scopes from narrowest to widest."""
USES = ("train", "convert", "cover", "speak", "serve", "publish")
"""Uses a record can permit: training a model, voice conversion, covers, speech, the request
service, and publishing the results."""
MAX_NAME_CHARS = 200
MAX_STATEMENT_CHARS = 4000
MAX_PATH_CHARS = 255
CONSENT_FILENAME = CONSENT_FILE  # the name is defined once, in aisinger.layout
"""Name of the record inside a voice folder."""

Scope = Literal["private", "non-commercial", "commercial"]
Use = Literal["train", "convert", "cover", "speak", "serve", "publish"]


def _no_control(value: str, allow_newlines: bool = False) -> str:
    """Reject control/format characters (newlines and tabs only where allowed)."""
    for ch in value:
        if allow_newlines and ch in "\n\t":
            continue
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            raise ValueError(f"contains a control character (U+{ord(ch):04X})")
    return value


def _single_line(value: str) -> str:
    _no_control(value)
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _multi_line(value: str) -> str:
    _no_control(value, allow_newlines=True)
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _relative_file(value: str) -> str:
    _single_line(value)
    for flavour in (PurePosixPath(value), PureWindowsPath(value)):
        if flavour.is_absolute() or flavour.drive or ".." in flavour.parts:
            raise ValueError("must be a relative path inside the record's folder")
    return value


Name = Annotated[str, StringConstraints(max_length=MAX_NAME_CHARS), AfterValidator(_single_line)]
Statement = Annotated[str, StringConstraints(max_length=MAX_STATEMENT_CHARS),
                      AfterValidator(_multi_line)]
RelFile = Annotated[str, StringConstraints(max_length=MAX_PATH_CHARS),
                    AfterValidator(_relative_file)]


class ConsentRecord(BaseModel):
    """One voice owner's consent (see the module docstring for the JSON schema)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=True)

    schema_: Literal["aisinger.consent/1"] = Field(default=SCHEMA, alias="schema")
    voice_owner: Name
    collected_by: Name
    date: _dt.date
    scope: Scope
    permitted_uses: tuple[Use, ...] = Field(min_length=1, max_length=len(USES))
    statement: Statement | None = None
    audio_file: RelFile | None = None
    self_consent: bool = False
    record_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")] = Field(
        default_factory=lambda: uuid.uuid4().hex)

    @model_validator(mode="after")
    def _evidence_and_uses(self) -> ConsentRecord:
        if self.statement is None and self.audio_file is None:
            raise ValueError("give a consent 'statement' or an 'audio_file' (or both)")
        if len(set(self.permitted_uses)) != len(self.permitted_uses):
            raise ValueError("'permitted_uses' lists a use twice")
        if self.date > _dt.date.today() + _dt.timedelta(days=1):
            raise ValueError(f"'date' {self.date} lies in the future")
        return self

    def allows(self, use: str) -> bool:
        """True when ``use`` (see :func:`check_scope`) is covered."""
        try:
            check_scope(self, use)
        except AisingerError:
            return False
        return True

    def card_summary(self) -> dict:
        """The facts a model card shows (no statement text, no file paths)."""
        return {"voice_owner": self.voice_owner, "collected_by": self.collected_by,
                "date": self.date.isoformat(), "scope": self.scope,
                "permitted_uses": list(self.permitted_uses),
                "evidence": "audio" if self.audio_file and not self.statement else
                            ("statement+audio" if self.audio_file else "statement"),
                "self_consent": self.self_consent, "record_id": self.record_id}

    def to_json(self) -> str:
        """The record as JSON (the file format)."""
        return self.model_dump_json(by_alias=True, indent=2) + "\n"


def _reject_duplicates(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    dup = {k for k in keys if keys.count(k) > 1}
    if dup:
        raise ValueError(f"duplicate key {sorted(dup)[0]!r}")
    return dict(pairs)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


def _first_error(err: ValidationError) -> str:
    e = err.errors(include_url=False)[0]
    where = ".".join(str(p) for p in e.get("loc", ())) or "record"
    msg = e.get("msg", "invalid").removeprefix("Value error, ")
    more = f" (and {err.error_count() - 1} more problems)" if err.error_count() > 1 else ""
    return f"{where}: {msg}{more}"


def parse_consent(text: str, source: str = "consent record") -> ConsentRecord:
    """Validate the JSON ``text`` of a record; ``source`` names it in error messages."""
    if len(text.encode("utf-8", errors="surrogatepass")) > MAX_RECORD_BYTES:
        raise AisingerError(f"{source}: larger than {MAX_RECORD_BYTES // 1024} KiB; not a "
                            "consent record")
    try:
        data = json.loads(text, object_pairs_hook=_reject_duplicates,
                          parse_constant=_reject_constant)
    except (ValueError, RecursionError) as err:
        raise AisingerError(f"{source}: not valid JSON ({str(err)[:120]})") from None
    if not isinstance(data, dict):
        raise AisingerError(f"{source}: a consent record must be a JSON object, "
                            f"got {type(data).__name__}")
    if data.get("schema", SCHEMA) != SCHEMA:
        raise AisingerError(f"{source}: unknown schema {str(data.get('schema'))[:60]!r}; "
                            f"expected {SCHEMA!r}")
    try:
        # JSON mode: ISO date strings are accepted for `date`; everything else stays strict
        return ConsentRecord.model_validate_json(json.dumps(data))
    except ValidationError as err:
        raise AisingerError(f"{source}: invalid consent record: {_first_error(err)}") from None


def load_consent(path: str | Path) -> ConsentRecord:
    """Read and validate a consent record file.

    Raises:
        AisingerError: missing file, larger than 64 KiB, not UTF-8 JSON, or any schema
            violation; one line naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise AisingerError(f"{path}: consent record not found")
    size = path.stat().st_size
    if size > MAX_RECORD_BYTES:
        raise AisingerError(f"{path}: {size} bytes; a consent record is at most "
                            f"{MAX_RECORD_BYTES // 1024} KiB")
    with open(path, "rb") as f:
        raw = f.read(MAX_RECORD_BYTES + 1)  # the file may grow between stat and read
    if len(raw) > MAX_RECORD_BYTES:
        raise AisingerError(f"{path}: larger than {MAX_RECORD_BYTES // 1024} KiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise AisingerError(f"{path}: not UTF-8 text; not a consent record") from None
    record = parse_consent(text.removeprefix("\ufeff"), str(path))
    if record.audio_file is not None and not (path.parent / record.audio_file).is_file():
        raise AisingerError(f"{path}: audio_file {record.audio_file!r} not found next to the "
                            "record")
    return record


def self_consent(owner_name: str, scope: str = "commercial",
                 uses: tuple[str, ...] = USES) -> ConsentRecord:
    """A record for one's own voice (``--consent-self``): owner = collector, dated today."""
    statement = (f"I, {owner_name}, am the owner of this voice and consent to its use by "
                 f"aisinger for: {', '.join(uses)} ({scope} scope).")
    try:
        return ConsentRecord(voice_owner=owner_name, collected_by=owner_name,
                             date=_dt.date.today(), scope=scope, permitted_uses=tuple(uses),
                             statement=statement, self_consent=True)
    except ValidationError as err:
        raise AisingerError(f"self consent for {owner_name[:60]!r}: {_first_error(err)}") from None


def check_scope(record: ConsentRecord, use: str) -> None:
    """Refuse a use the record does not cover.

    Args:
        use: ``"<use>"`` or ``"<use>:<scope>"``, e.g. ``"train"`` or ``"cover:commercial"``;
            the scope defaults to ``private``.  Uses: :data:`USES`; scopes: :data:`SCOPES`.
    Raises:
        AisingerError: naming the owner, what the record allows and what was asked.
    """
    action, _, wanted = use.partition(":")
    wanted = wanted or "private"
    if action not in USES:
        raise AisingerError(f"unknown use {action!r}; expected one of {', '.join(USES)}")
    if wanted not in SCOPES:
        raise AisingerError(f"unknown scope {wanted!r}; expected one of {', '.join(SCOPES)}")
    allowed = ", ".join(record.permitted_uses)
    if action not in record.permitted_uses:
        raise AisingerError(f"consent of {record.voice_owner} ({record.date}) does not permit "
                            f"'{action}' (permitted: {allowed})")
    if SCOPES.index(wanted) > SCOPES.index(record.scope):
        raise AisingerError(f"consent of {record.voice_owner} ({record.date}) covers "
                            f"{record.scope} use only; '{action}' for {wanted} use is refused")


def check_voice(voice_dir: str | Path, use: str) -> ConsentRecord:
    """The gate of every use of a voice folder (convert, cover, speak): its
    :data:`CONSENT_FILE` must exist and permit ``use`` (see :func:`check_scope`)."""
    voice_dir = Path(voice_dir)
    record_path = voice_dir / CONSENT_FILE
    if not record_path.is_file():
        raise AisingerError(f"{voice_dir}: no {CONSENT_FILE}; this voice has no consent record")
    record = load_consent(record_path)
    check_scope(record, use)
    return record


def require_consent(path: str | Path | None, use: str, *, self_owner: str | None = None
                    ) -> ConsentRecord:
    """The gate for ``dataset build`` / training: a record must exist and cover ``use``.

    Args:
        path: the consent record (``--consent FILE``), or None.
        use: see :func:`check_scope`.
        self_owner: with ``--consent-self``, the owner's name (used when ``path`` is None).
    """
    if path is None and self_owner is None:
        raise AisingerError("no consent record: a voice cannot be trained without its owner's "
                            "consent (pass --consent FILE, or --consent-self for your own voice)")
    record = load_consent(path) if path is not None else self_consent(self_owner)
    check_scope(record, use)
    return record


def save_consent(record: ConsentRecord, path: str | Path) -> Path:
    """Write ``record`` as JSON atomically (temp file in the same folder + rename)."""
    return write_text(path, record.to_json())


def voice_info(path: str | Path) -> dict:
    """``aisinger voice info``: the consent facts of a voice folder (or a record file).

    Args:
        path: a voice folder holding ``consent.json``, or the record itself.
    Returns:
        JSON-friendly dict: ``consent_file``, the :meth:`ConsentRecord.card_summary` facts,
        ``statement``, ``audio_file``.  (The 16-bit voice hash a voice's watermarks carry is
        :func:`aisinger.label.watermark.voice_hash`: consent sits below labelling.)
    Raises:
        AisingerError: no record, or an invalid one.
    """
    path = Path(path)
    record_path = path / CONSENT_FILENAME if path.is_dir() else path
    if path.is_dir() and not record_path.is_file():
        raise AisingerError(f"{path}: no {CONSENT_FILENAME} in this voice folder; the voice "
                            "has no consent record")
    record = load_consent(record_path)
    info = {"consent_file": str(record_path), **record.card_summary(),
            "statement": record.statement, "audio_file": record.audio_file}
    return info
