"""Deterministic lyrics: one syllable per note, in English, Mandarin or Cantonese.

English and Cantonese have a bank of single-syllable words that the lab TTS voices pronounce
well (:data:`ENGLISH`, :data:`CANTONESE` Han characters all in espeak-ng's yue dictionary);
:func:`make_lyrics` draws a line of syllables from a bank.  Mandarin lines are real lines
(:data:`MANDARIN_LINES`, one character per note, pinyin from pypinyin), so that what Whisper
transcribes can be compared with meaningful text.
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

MANDARIN_LINES = tuple("""
春天来了 月亮很圆 天空很蓝 我想回家 花开满山 你在哪里 明天再见 风吹过来 一起唱歌 星星亮了
我想回家了 今晚月色美 你是我的光 星星在发光 我们一起走 山上开满花 雨下个不停 海风吹过来
风吹过山岗 明天会更好 我爱这片蓝天 你的笑容真美 春风吹过山岗 我在等你回来 夜里灯火通明
天上星星很多 我们都是朋友 一起走过春天 花儿开在路边 小鸟飞向远方 我们一起去唱歌 月亮代表我的心
今天天气真不错 你是我心中的歌 风雨之后见彩虹 小鸟在树上唱歌 我想和你看大海 春天的花开满山
夜空中最亮的星 我的家在山那边
""".split())
"""Meaningful Mandarin lines of 4-7 characters.  Sung Mandarin made of random characters is
not understood even when every syllable is right (Whisper, like a listener, hears the likelier
homophones: 海雨来星地 -> 還原來心底), so the lab sings real lines and CER measures what a
listener would hear."""

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
    if language == "zh":
        return _mandarin_lines(n_syllables, rng)
    bank: list = list(ENGLISH if language == "en" else CANTONESE)
    picks: list[int] = []
    for _ in range(n_syllables):
        i = int(rng.integers(len(bank)))
        while picks and i == picks[-1]:
            i = int(rng.integers(len(bank)))
        picks.append(i)
    syl = tuple(bank[i] for i in picks)
    return Lyrics(language, syl, syl)


def _line_lengths(n: int) -> list[int]:
    """Split ``n`` syllables into line lengths of 4-7 (a shorter ``n`` is one cut line)."""
    out = []
    while n > 7:
        take = 7 if n >= 11 else 4  # leaves 4-7 or more for the next line
        out.append(take)
        n -= take
    return out + [n]


def _mandarin_lines(n_syllables: int, rng: np.random.Generator) -> Lyrics:
    """``n_syllables`` characters made of whole lines of :data:`MANDARIN_LINES` (the last one
    cut when ``n_syllables`` < 4), with tone-numbered pinyin for espeak-ng."""
    from pypinyin import Style, lazy_pinyin

    chars: list[str] = []
    for length in _line_lengths(n_syllables):
        fitting = [ln for ln in MANDARIN_LINES if len(ln) >= length and
                   (len(ln) == length or length < 4)]
        chars += list(fitting[int(rng.integers(len(fitting)))][:length])
    pinyin = lazy_pinyin("".join(chars), style=Style.TONE3, neutral_tone_with_five=True)
    return Lyrics("zh", tuple(chars), tuple(pinyin))
