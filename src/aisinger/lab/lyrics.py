"""Deterministic lyrics: one syllable per note, in English, Mandarin or Cantonese.

Each language has a bank of single-syllable words that its lab TTS voices pronounce well
(:data:`ENGLISH`, :data:`MANDARIN` as ``(hanzi, pinyin)``, :data:`CANTONESE` Han characters all
in espeak-ng's yue dictionary).  :func:`make_lyrics` draws a line of syllables from a bank.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aisinger.errors import AisingerError

ENGLISH = (
    "love sun moon star night day light dream heart rain sky blue gold fire home road sea wind "
    "song sing fly high low free run time stay go come you me we my your the and all now here "
    "bright dark warm cold slow shine glow fall rise hold hand eyes soul life new old way far "
    "near dance hope true dawn rose snow lake hill tree bird wings kiss smile sweet deep wild "
    "calm peace joy dear long last first one stars waves shore town friend"
).split()
"""English one-syllable words."""

MANDARIN = tuple((h, p) for h, p in (
    ("我", "wo3"), ("你", "ni3"), ("他", "ta1"), ("爱", "ai4"), ("心", "xin1"), ("天", "tian1"),
    ("地", "di4"), ("风", "feng1"), ("雨", "yu3"), ("花", "hua1"), ("月", "yue4"), ("星", "xing1"),
    ("光", "guang1"), ("梦", "meng4"), ("歌", "ge1"), ("唱", "chang4"), ("春", "chun1"),
    ("夏", "xia4"), ("秋", "qiu1"), ("冬", "dong1"), ("山", "shan1"), ("水", "shui3"),
    ("海", "hai3"), ("云", "yun2"), ("家", "jia1"), ("路", "lu4"), ("走", "zou3"), ("飞", "fei1"),
    ("远", "yuan3"), ("美", "mei3"), ("好", "hao3"), ("高", "gao1"), ("红", "hong2"),
    ("白", "bai2"), ("人", "ren2"), ("来", "lai2"), ("去", "qu4"), ("看", "kan4"),
    ("想", "xiang3"), ("大", "da4"), ("年", "nian2"), ("明", "ming2"), ("夜", "ye4"),
    ("笑", "xiao4"), ("情", "qing2"), ("手", "shou3"), ("等", "deng3"), ("听", "ting1"),
    ("灯", "deng1"), ("火", "huo3"), ("鸟", "niao3"), ("长", "chang2"), ("新", "xin1"),
    ("蓝", "lan2"),
))
"""Mandarin syllables as (simplified Han character, pinyin with tone digit)."""

CANTONESE = tuple(
    "我你佢愛心天地風雨花月星光夢歌唱春夏秋冬山水海雲家路行飛遠靚好高紅白人來去睇想大年明夜笑情"
    "手等聽燈火鳥長新藍")
"""Cantonese syllables as traditional Han characters (read by espeak-ng ``yue``)."""

LANGUAGES = ("en", "zh", "yue")


@dataclass(frozen=True)
class Lyrics:
    """A sung line.

    Attributes:
        language: ``"en"``, ``"zh"`` or ``"yue"``.
        syllables: display syllables, one per note (words / Han characters).
        tts: what the TTS is given for each syllable (pinyin for Mandarin, else the same).
    """

    language: str
    syllables: tuple[str, ...]
    tts: tuple[str, ...]

    @property
    def text(self) -> str:
        """The line as text (words separated by spaces; Chinese without spaces)."""
        return " ".join(self.syllables) if self.language == "en" else "".join(self.syllables)


def make_lyrics(language: str, n_syllables: int, rng: np.random.Generator) -> Lyrics:
    """Draw ``n_syllables`` syllables (no immediate repeats) of ``language`` with ``rng``."""
    if language not in LANGUAGES:
        raise AisingerError(f"lyrics: unknown language {language!r}; use one of {LANGUAGES}")
    if n_syllables < 1:
        raise AisingerError(f"lyrics: need at least one syllable, got {n_syllables}")
    bank: list = list(ENGLISH if language == "en" else MANDARIN if language == "zh" else CANTONESE)
    picks: list[int] = []
    for _ in range(n_syllables):
        i = int(rng.integers(len(bank)))
        while picks and i == picks[-1]:
            i = int(rng.integers(len(bank)))
        picks.append(i)
    if language == "zh":
        return Lyrics(language, tuple(bank[i][0] for i in picks), tuple(bank[i][1] for i in picks))
    syl = tuple(bank[i] for i in picks)
    return Lyrics(language, syl, syl)
