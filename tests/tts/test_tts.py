"""aisinger.tts: Kokoro-82M and piper joe, run with onnxruntime from registry assets.

Real speech the project makes: each engine is deterministic, speaks at its native rate, and
Whisper base understands one short sentence per language (zh, en, ja).  A missing/corrupt
asset and text without phonemes give one-line errors.  About 40 s on 2 busy cores.
"""

from __future__ import annotations

import numpy as np
import pytest

from aisinger.errors import AisingerError, AssetError

SENTENCES = {"zh": "今天天气很好。", "en": "The sun is shining today.", "ja": "今日はいい天気です。"}


@pytest.mark.parametrize("lang, voice, rate", [("zh", "kokoro-alpha", 24000),
                                               ("en", "kokoro-kumo", 24000),
                                               ("ja", "kokoro-alpha", 24000),
                                               ("en", "piper-joe", 22050)])
def test_engine_deterministic_and_intelligible(lang, voice, rate):
    from aisinger.eval import evaluate
    from aisinger.tts import synthesize

    a, sr = synthesize(SENTENCES[lang], lang, voice)
    b, sr2 = synthesize(SENTENCES[lang], lang, voice)
    assert sr == sr2 == rate
    assert a.dtype == np.float32 and np.array_equal(a, b)  # same text -> same samples
    assert 0.8 < a.size / sr < 6 and 0.05 < np.abs(a).max() <= 1.0
    r = evaluate((a, sr), lyrics=SENTENCES[lang], lang=lang, metrics=["intelligibility"])
    assert r["cer"] <= 0.2, r["info"]["transcript"]


def test_resample_blend_and_errors():
    from aisinger.tts import KokoroVoice, synthesize

    y, sr = synthesize("你好", "zh", sr=16000)
    assert sr == 16000 and y.size > 0
    mixed, _ = synthesize("你好", "zh", KokoroVoice((("jf_alpha", 0.5), ("jm_kumo", 0.5))))
    alpha, _ = synthesize("你好", "zh", "kokoro-alpha")
    assert not (mixed.size == alpha.size and np.array_equal(mixed, alpha))
    with pytest.raises(AisingerError, match="'\\?\\?\\?' gives no phonemes"):
        synthesize("???", "en", "kokoro-alpha")
    with pytest.raises(AisingerError, match="no phonemes"):
        synthesize("...", "en", "piper-joe")
    with pytest.raises(AisingerError, match="speaks en"):
        synthesize("你好", "zh", "piper-joe")
    with pytest.raises(AisingerError, match="unknown speaker"):
        synthesize("hi", "en", "nobody")
    with pytest.raises(AisingerError, match="empty"):
        synthesize("  ", "en")


def test_corrupt_asset_names_the_fetch_command(tmp_path, monkeypatch):
    """A corrupt piper model in AISINGER_MODELS_DIR is refused with the asset's name and the
    command that repairs it (the file is hash-checked before onnxruntime sees it)."""
    from aisinger import assets
    from aisinger.tts import piper, synthesize

    folder = tmp_path / "piper-joe"
    folder.mkdir()
    for af in assets.get("piper-joe").files:
        (folder / af.filename).write_bytes(b"not a model")
    monkeypatch.setenv("AISINGER_MODELS_DIR", str(tmp_path))
    piper._model.cache_clear()
    try:
        with pytest.raises(AssetError) as err:
            synthesize("Hello.", "en", "piper-joe")
    finally:
        piper._model.cache_clear()
    msg = str(err.value)
    assert "piper-joe" in msg and "aisinger models fetch piper-joe" in msg and "\n" not in msg
