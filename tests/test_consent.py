"""Consent records: schema, enforcement, and hostile or corrupt files."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from aisinger import consent as c
from aisinger.errors import AisingerError


def _good(**over) -> dict:
    base = {"schema": c.SCHEMA, "voice_owner": "Jane Doe", "collected_by": "Studio X",
            "date": "2026-03-01", "scope": "non-commercial",
            "permitted_uses": ["train", "convert", "cover"],
            "statement": "I, Jane Doe, agree that my recorded voice may be used to train a model.",
            "audio_file": None, "self_consent": False}
    base.update(over)
    return base


def _write(tmp_path: Path, data: dict | str | bytes, name: str = "consent.json") -> Path:
    p = tmp_path / name
    if isinstance(data, bytes):
        p.write_bytes(data)
    else:
        p.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return p


def test_round_trip_and_card(tmp_path):
    rec = c.load_consent(_write(tmp_path, _good()))
    assert rec.voice_owner == "Jane Doe" and rec.scope == "non-commercial"
    assert rec.date == dt.date(2026, 3, 1)
    saved = c.save_consent(rec, tmp_path / "voice" / c.CONSENT_FILENAME)
    assert c.load_consent(saved) == rec
    assert sorted(p.name for p in saved.parent.iterdir()) == [c.CONSENT_FILENAME]
    card = rec.card_summary()
    assert card["scope"] == "non-commercial" and card["evidence"] == "statement"
    assert "statement" not in card


def test_scope_enforcement(tmp_path):
    rec = c.load_consent(_write(tmp_path, _good()))
    c.check_scope(rec, "train")
    c.check_scope(rec, "cover:non-commercial")
    with pytest.raises(AisingerError, match="non-commercial use only"):
        c.check_scope(rec, "cover:commercial")
    with pytest.raises(AisingerError, match="does not permit 'speak'"):
        c.check_scope(rec, "speak")
    with pytest.raises(AisingerError, match="unknown use"):
        c.check_scope(rec, "sell")
    assert rec.allows("train") and not rec.allows("publish")


def test_no_record_no_training(tmp_path):
    with pytest.raises(AisingerError, match="cannot be trained without"):
        c.require_consent(None, "train")
    with pytest.raises(AisingerError, match="not found"):
        c.require_consent(tmp_path / "missing.json", "train")
    own = c.require_consent(None, "train:commercial", self_owner="Me Myself")
    assert own.self_consent and own.voice_owner == own.collected_by == "Me Myself"
    rec = c.require_consent(_write(tmp_path, _good()), "train")
    assert rec.voice_owner == "Jane Doe"
    with pytest.raises(AisingerError, match="refused"):
        c.require_consent(_write(tmp_path, _good(scope="private")), "train:commercial")


def test_audio_evidence(tmp_path):
    (tmp_path / "jane_consent.wav").write_bytes(b"RIFF")
    rec = c.load_consent(_write(tmp_path, _good(statement=None, audio_file="jane_consent.wav")))
    assert rec.card_summary()["evidence"] == "audio"
    with pytest.raises(AisingerError, match="not found next to"):
        c.load_consent(_write(tmp_path, _good(statement=None, audio_file="other.wav")))


@pytest.mark.parametrize("bad, message", [
    (_good(self_consent="yes"), "self_consent"),
    (_good(date=20260301), "date"),
    (_good(permitted_uses="train"), "permitted_uses"),
    (_good(permitted_uses=[]), "permitted_uses"),
    (_good(permitted_uses=["train", "train"]), "twice"),
    (_good(scope="everything"), "scope"),
    (_good(voice_owner="Ja\u0007ne"), "control character"),
    (_good(voice_owner="Jane\u202e"), "control character"),
    (_good(collected_by="x" * 1000), "at most"),
    (_good(statement=None), "statement"),
    (_good(statement="   "), "blank"),
    (_good(audio_file="/etc/passwd", statement=None), "relative path"),
    (_good(audio_file="../../secret.wav"), "relative path"),
    (_good(date="2999-01-01"), "future"),
    (_good(schema="aisinger.consent/99"), "unknown schema"),
    ({**_good(), "extra": 1}, "extra"),
    ([1, 2, 3], "JSON object"),
    ("not json at all", "not valid JSON"),
    ('{"scope": "private", "scope": "commercial"}', "duplicate key"),
    ('{"voice_owner": NaN}', "not valid JSON"),
    ("[" * 60000, "not valid JSON"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
])
def test_hostile_or_corrupt_records_are_rejected(tmp_path, bad, message):
    p = _write(tmp_path, bad)
    with pytest.raises(AisingerError, match=message) as err:
        c.load_consent(p)
    text = str(err.value)
    assert str(p) in text and "\n" not in text and len(text) < 400


def test_huge_file_rejected_without_reading_it_all(tmp_path):
    p = tmp_path / "huge.json"
    with open(p, "wb") as f:
        f.seek(50 * 1024 * 1024)
        f.write(b"}")
    with pytest.raises(AisingerError, match="64 KiB"):
        c.load_consent(p)


def test_script_text_is_plain_data(tmp_path):
    marker = tmp_path / "pwned"
    payload = (f"<script>alert(1)</script> {{{{7*7}}}} $(touch {marker}) "
               f"__import__('os').system('touch {marker}')")
    rec = c.load_consent(_write(tmp_path, _good(statement=payload, voice_owner="<b>Jane</b>")))
    assert rec.statement == payload and rec.voice_owner == "<b>Jane</b>"
    assert not marker.exists()
    assert json.loads(rec.to_json())["statement"] == payload


def test_records_are_immutable(tmp_path):
    rec = c.load_consent(_write(tmp_path, _good()))
    with pytest.raises(Exception):
        rec.scope = "commercial"


def test_voice_info(tmp_path):
    folder = tmp_path / "voices" / "jane"
    c.save_consent(c.load_consent(_write(tmp_path, _good())), folder / c.CONSENT_FILENAME)
    info = c.voice_info(folder)
    assert info["voice_owner"] == "Jane Doe" and info["scope"] == "non-commercial"
    json.dumps(info)
    with pytest.raises(AisingerError, match="no consent.json"):
        c.voice_info(tmp_path / "voices")
