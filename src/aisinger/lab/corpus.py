"""The lab corpus: parallel synthetic singing by several voices, with songs and ground truth.

Layout of ``DIR`` (all paths in the manifest are relative to ``DIR``)::

    DIR/manifest.json                       every clip and song, the phrases, voices and config
    DIR/voices/<voice>/<phrase>.wav         44.1 kHz mono 16-bit singing, one phrase
    DIR/voices/<voice>/<phrase>.f0.npy      imposed F0, float32 Hz at FRAME_RATE (0 = unvoiced)
    DIR/voices/<voice>/<phrase>.json        per-clip record (also the "done" marker for resuming)
    DIR/songs/<song>/<voice>/mix.flac       stereo 24-bit mixture = vocals.flac + accompaniment.flac
    DIR/songs/<song>/<voice>/vocals.flac    the vocal stem exactly as it is in the mix
    DIR/songs/<song>/<voice>/accompaniment.flac
    DIR/songs/<song>/<voice>/f0.npy, song.mid, meta.json

Phrases come in language sets (``en``, ``zh``, ``yue``); every voice sings every phrase of its
own language, and the first ``n_shared`` English phrases are *shared*: every voice sings them.
All renditions of a phrase use the same notes (male voices an octave down), the same note
timing frame for frame, and the same expressive F0 contour (vibrato/portamento/jitter seed),
so for any two voices there are parallel clips: converting voice A's clip to voice B has
voice B's clip as ground truth (F0 transposed by their octave difference).

Songs are several phrases over a FluidSynth accompaniment; English songs are sung by every
voice, Chinese songs by the voices of their language.  Everything is deterministic from the
seed; existing results whose recipe is unchanged are skipped, so a build can be resumed.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import math
import multiprocessing
import os
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from aisinger.dsp.frames import FRAME_RATE
from aisinger.errors import AisingerError
from aisinger.io.audio import save
from aisinger.io.fileio import atomic_path, write_json
from aisinger.lab.accompaniment import CHORD_BEATS, accompany
from aisinger.lab.lyrics import LANGUAGES, Lyrics, make_lyrics
from aisinger.lab.melody import NOTE_TIME_DECIMALS, Note, make_melody, melody_end, transpose
from aisinger.lab.mixture import mix
from aisinger.lab.sing import render
from aisinger.progress import track
from aisinger.tts.classic import voice_spec

CORPUS_FORMAT = "aisinger-lab-corpus"
CORPUS_VERSION = 2
"""Bump when the synthesis changes, so resumed builds redo every clip (2: Mandarin lyrics are
real lines; neural singers sing whole spoken lines)."""

DEFAULT_VOICES = ("kokoro-alpha", "kokoro-kumo", "kokoro-mix-deep", "piper-joe",
                  "kokoro-nezumi", "kokoro-mix-bright", "flite-rms", "espeak-yue-f4")
"""Eight clearly different voices, 4 female / 4 male: six human-like singers (Kokoro and piper,
Mandarin and English, two of them blends with formant/range changes) and two robotic timbres
kept for variety (flite English, espeak-ng Cantonese)."""

BASE_PHRASES = 12
"""Phrases per language set at ``size=1`` (about a minute of singing per voice)."""

REGISTER_CYCLE = ("low", "mid", "high")
"""Registers of successive phrases, so every voice sings low and high melodies."""

MALE_TRANSPOSE = -12
"""Semitones added to the melody for male voices (melodies are written in a female range)."""

SONG_PROGRAMS = (0, 4, 24, 48, 88)
"""GM programs for song chords: piano, electric piano, nylon guitar, strings, pad."""

SONG_GAP_BEATS = 2
"""Rest between the phrases of a song, in beats (phrases start on a chord-window boundary)."""

CLIP_SUBTYPE = "PCM_16"
"""Sample format of the phrase WAVs."""

STEM_BITS = 24
"""Song stems and mixes are FLAC with this many bits; the stems are rounded to that grid before
summing, so the stored mix equals the stored vocals + accompaniment sample for sample."""


@dataclass(frozen=True)
class CorpusConfig:
    """What :func:`make_corpus` builds; stored in the manifest.

    Attributes:
        seed: master seed; the same config gives bit-identical files.
        voices: lab voice names (see :data:`aisinger.tts.classic.VOICES`).
        n_phrases: phrases per language set present among the voices.
        n_shared: English phrases (the first ones of the set) also sung by non-English voices.
        n_songs: songs per language set.
        phrases_per_song: phrases in each song.
        notes_per_phrase: (min, max) notes of a phrase (one syllable per note).
        tempo_bpm: (min, max) tempo of a phrase.
        sr: sample rate of every file in Hz.
        test_fraction: fraction of each language set's phrases in the test split (songs are
            all "test").
        vocal_to_acc_db: vocal level above the accompaniment in the song mixes.
    """

    seed: int = 0
    voices: tuple[str, ...] = DEFAULT_VOICES
    n_phrases: int = BASE_PHRASES
    n_shared: int = 4
    n_songs: int = 1
    phrases_per_song: int = 3
    notes_per_phrase: tuple[int, int] = (4, 7)
    tempo_bpm: tuple[int, int] = (90, 120)
    sr: int = 44100
    test_fraction: float = 0.2
    vocal_to_acc_db: float = 3.0

    def validate(self) -> None:
        """Raise :class:`AisingerError` for an unusable config."""
        for v in self.voices:
            voice_spec(v)
        if not self.voices:
            raise AisingerError("lab corpus: no voices")
        if len(set(self.voices)) != len(self.voices):
            raise AisingerError("lab corpus: a voice is listed twice")
        if self.n_phrases < 1 or self.n_shared < 0 or self.n_songs < 0 or self.phrases_per_song < 1:
            raise AisingerError("lab corpus: n_phrases must be >= 1 and counts must be >= 0")
        lo, hi = self.notes_per_phrase
        if not 1 <= lo <= hi:
            raise AisingerError(f"lab corpus: bad notes_per_phrase {self.notes_per_phrase}")
        if not 0 < self.tempo_bpm[0] <= self.tempo_bpm[1]:
            raise AisingerError(f"lab corpus: bad tempo_bpm {self.tempo_bpm}")
        if not 0 <= self.test_fraction < 1:
            raise AisingerError(f"lab corpus: test_fraction must be in [0, 1), got {self.test_fraction}")


# ---------------------------------------------------------------------------------- recipes


@dataclass(frozen=True)
class Phrase:
    """A line of lyrics on a melody (reference pitch, female range)."""

    id: str
    language: str
    lyrics: Lyrics
    notes: tuple[Note, ...]
    register: str
    tempo_bpm: float
    expr_seed: int  # seed of the expressive F0 (shared by all voices)
    vibrato_cents: float
    vibrato_hz: float
    portamento_s: float
    shared: bool
    split: str


@dataclass(frozen=True)
class Song:
    """Several phrases of one language over an accompaniment."""

    id: str
    language: str
    lyrics: Lyrics
    notes: tuple[Note, ...]
    tempo_bpm: float
    program: int
    expr_seed: int
    acc_seed: int
    vibrato_cents: float
    vibrato_hz: float
    portamento_s: float
    shared: bool


def _rng(seed: int, *keys: int | str) -> np.random.Generator:
    """An RNG determined by the seed and keys (strings hashed with CRC32, stable across runs)."""
    ints = [int(seed)] + [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in keys]
    return np.random.default_rng(ints)


def _expression(rng: np.random.Generator) -> dict:
    """Random singing-style parameters of one phrase (shared by all its renditions)."""
    return {
        "expr_seed": int(rng.integers(2**31)),
        "vibrato_cents": round(float(rng.uniform(25.0, 45.0)), 2),
        "vibrato_hz": round(float(rng.uniform(5.0, 6.2)), 3),
        "portamento_s": round(float(rng.uniform(0.05, 0.12)), 3),
    }


def _languages(cfg: CorpusConfig) -> list[str]:
    """Language sets to build: those of the voices, plus English when phrases are shared."""
    present = {voice_spec(v).language for v in cfg.voices}
    if cfg.n_shared > 0:
        present.add("en")
    return [lang for lang in LANGUAGES if lang in present]


def _splits(cfg: CorpusConfig, lang: str, n: int) -> list[str]:
    """Deterministic train/test split of a language set's ``n`` phrases."""
    n_test = int(math.ceil(cfg.test_fraction * n)) if n >= 2 else 0
    order = _rng(cfg.seed, "split", lang).permutation(n)
    test = set(order[:n_test].tolist())
    return ["test" if i in test else "train" for i in range(n)]


def plan_phrases(cfg: CorpusConfig) -> list[Phrase]:
    """All phrases of the corpus, deterministic from ``cfg``."""
    voice_langs = {voice_spec(v).language for v in cfg.voices}
    phrases = []
    for lang in _languages(cfg):
        n = cfg.n_phrases if lang in voice_langs else min(cfg.n_shared, cfg.n_phrases)
        splits = _splits(cfg, lang, n)
        for i in range(n):
            rng = _rng(cfg.seed, "phrase", lang, i)
            register = REGISTER_CYCLE[i % len(REGISTER_CYCLE)]
            tempo = float(rng.integers(cfg.tempo_bpm[0], cfg.tempo_bpm[1] + 1))
            n_notes = int(rng.integers(cfg.notes_per_phrase[0], cfg.notes_per_phrase[1] + 1))
            notes = make_melody(n_notes, seed=int(rng.integers(2**31)), register=register,
                                tempo_bpm=tempo)
            lyrics = make_lyrics(lang, n_notes, rng)
            phrases.append(Phrase(
                id=f"{lang}-{i:03d}", language=lang, lyrics=lyrics, notes=tuple(notes),
                register=register, tempo_bpm=tempo, shared=lang == "en" and i < cfg.n_shared,
                split=splits[i], **_expression(rng)))
    return phrases


def plan_songs(cfg: CorpusConfig) -> list[Song]:
    """All songs of the corpus (English ones shared by every voice)."""
    voice_langs = {voice_spec(v).language for v in cfg.voices}
    songs = []
    for lang in _languages(cfg):
        if lang != "en" and lang not in voice_langs:
            continue
        for i in range(cfg.n_songs):
            rng = _rng(cfg.seed, "song", lang, i)
            tempo = float(rng.integers(cfg.tempo_bpm[0], cfg.tempo_bpm[1] + 1))
            beat = 60.0 / tempo
            window = CHORD_BEATS * beat
            t0 = 1.0  # first onset (s): room for a count-in feel and TTS onsets
            notes: list[Note] = []
            syllables: list[str] = []
            tts: list[str] = []
            for k in range(cfg.phrases_per_song):
                n_notes = int(rng.integers(cfg.notes_per_phrase[0], cfg.notes_per_phrase[1] + 1))
                register = REGISTER_CYCLE[(i + k) % len(REGISTER_CYCLE)]
                part = make_melody(n_notes, seed=int(rng.integers(2**31)), register=register,
                                   tempo_bpm=tempo, lead_in_s=0.0)
                notes += [_shift_note(n, t0) for n in part]
                # Next phrase: after a rest, on a chord-window boundary of the song grid.
                rel_end = melody_end(part) + SONG_GAP_BEATS * beat
                t0 += math.ceil(rel_end / window - 1e-9) * window
                lyr = make_lyrics(lang, n_notes, rng)
                syllables += lyr.syllables
                tts += lyr.tts
            songs.append(Song(
                id=f"song-{lang}-{i:02d}", language=lang,
                lyrics=Lyrics(lang, tuple(syllables), tuple(tts)), notes=tuple(notes),
                tempo_bpm=tempo, program=int(rng.choice(SONG_PROGRAMS)),
                acc_seed=int(rng.integers(2**31)), shared=lang == "en", **_expression(rng)))
    return songs


def _shift_note(note: Note, offset: float) -> Note:
    """``note`` moved later by ``offset`` seconds (times rounded like :func:`make_melody`)."""
    start = round(note.start + offset, NOTE_TIME_DECIMALS)
    end = round(note.end + offset, NOTE_TIME_DECIMALS)
    return Note(note.midi, start, round(end - start, NOTE_TIME_DECIMALS))


def voice_transpose(voice: str) -> int:
    """Semitones by which ``voice`` transposes the corpus melodies (0 female, -12 male, plus
    the voice's own ``pitch_offset``)."""
    spec = voice_spec(voice)
    return (MALE_TRANSPOSE if spec.gender == "male" else 0) + spec.pitch_offset


def tts_syllables(voice: str, item: dict) -> list[str]:
    """What the voice's TTS is given per note: Kokoro reads Mandarin Han characters, the
    espeak-ng Mandarin voices tone-numbered pinyin (``item["tts"]``)."""
    spec = voice_spec(voice)
    if spec.engine == "kokoro" and item["language"] == "zh":
        return list(item["syllables"])
    return list(item["tts"])


def _sings(voice: str, language: str, shared: bool) -> bool:
    return shared or voice_spec(voice).language == language


# ---------------------------------------------------------------------------------- jobs


def _notes_json(notes) -> list[dict]:
    return [n.to_dict() for n in notes]


def _recipe_hash(recipe: dict) -> str:
    blob = json.dumps({"version": CORPUS_VERSION, **recipe}, sort_keys=True, ensure_ascii=True)
    return hashlib.sha1(blob.encode()).hexdigest()


def _write_json(path: Path, obj: dict) -> None:
    write_json(path, obj, indent=1)


def _write_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        np.save(tmp, arr)


def _done(record_path: Path, recipe_hash: str, files: list[Path]) -> dict | None:
    """The stored record if a job already ran with this recipe and its files exist."""
    if not record_path.exists() or not all(f.exists() for f in files):
        return None
    try:
        rec = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return rec if rec.get("recipe_hash") == recipe_hash else None


def _clip_job(out_dir: str, voice: str, phrase: dict, sr: int) -> dict:
    """Render one phrase with one voice (runs in a worker process); returns its record."""
    root = Path(out_dir)
    rel = Path("voices") / voice / phrase["id"]
    wav, f0p, recp = (root / rel.with_suffix(".wav"), root / rel.with_suffix(".f0.npy"),
                      root / rel.with_suffix(".json"))
    shift = voice_transpose(voice)
    notes = transpose([Note(**n) for n in phrase["notes"]], shift)
    recipe = {"voice": voice, "phrase": phrase, "sr": sr, "transpose": shift}
    h = _recipe_hash(recipe)
    if (rec := _done(recp, h, [wav, f0p])) is not None:
        return rec
    spec = voice_spec(voice)
    r = render(tts_syllables(voice, phrase), notes, voice, sr=sr, seed=phrase["expr_seed"],
               vibrato_cents=phrase["vibrato_cents"], vibrato_hz=phrase["vibrato_hz"],
               portamento_s=phrase["portamento_s"], language=phrase["language"])
    save(wav, r.audio, sr, subtype=CLIP_SUBTYPE)
    _write_npy(f0p, r.f0)
    rec = {
        "id": f"{voice}/{phrase['id']}", "kind": "phrase", "voice": voice,
        "phrase": phrase["id"], "language": phrase["language"],
        "voice_language": spec.language, "lyrics": list(phrase["syllables"]),
        "text": phrase["text"], "tts_text": tts_syllables(voice, phrase),
        "notes": _notes_json(notes), "transpose": shift,
        "audio": str(rel.with_suffix(".wav")), "f0": str(rel.with_suffix(".f0.npy")),
        "sr": sr, "n_samples": int(len(r.audio)), "duration_s": round(len(r.audio) / sr, 6),
        "frame_rate": FRAME_RATE,
        "note_frames": [list(x) for x in r.note_frames],
        "voiced_frames": [list(x) for x in r.voiced_frames],
        "split": phrase["split"], "shared": phrase["shared"],
        "intelligible": bool(spec.intelligible), "recipe_hash": h,
    }
    _write_json(recp, rec)
    return rec


def _song_job(out_dir: str, voice: str, song: dict, sr: int, vocal_to_acc_db: float) -> dict:
    """Render one song with one voice: vocal stem, accompaniment, mix (worker process)."""
    root = Path(out_dir)
    rel = Path("songs") / song["id"] / voice
    d = root / rel
    names = {"mix": "mix.flac", "vocals": "vocals.flac", "accompaniment": "accompaniment.flac",
             "f0": "f0.npy", "midi": "song.mid"}
    shift = voice_transpose(voice)
    recipe = {"voice": voice, "song": song, "sr": sr, "transpose": shift,
              "vocal_to_acc_db": vocal_to_acc_db}
    h = _recipe_hash(recipe)
    if (rec := _done(d / "meta.json", h, [d / n for n in names.values()])) is not None:
        return rec
    spec = voice_spec(voice)
    ref_notes = [Note(**n) for n in song["notes"]]
    notes = transpose(ref_notes, shift)
    r = render(tts_syllables(voice, song), notes, voice, sr=sr, seed=song["expr_seed"],
               vibrato_cents=song["vibrato_cents"], vibrato_hz=song["vibrato_hz"],
               portamento_s=song["portamento_s"], language=song["language"])
    with atomic_path(d / names["midi"]) as tmp_mid:
        acc = accompany(ref_notes, sr=sr, seconds=len(r.audio) / sr, seed=song["acc_seed"],
                        program=song["program"], tempo_bpm=song["tempo_bpm"], midi_out=tmp_mid)
    _, v, a = mix(r.audio, acc, vocal_to_acc_db=vocal_to_acc_db)
    v, a = _quantize(v), _quantize(a)
    m = v + a  # exact: both on the 24-bit grid and far from full scale
    save(d / names["vocals"], v, sr)
    save(d / names["accompaniment"], a, sr)
    save(d / names["mix"], m, sr)
    _write_npy(d / names["f0"], r.f0)
    rec = {
        "id": f"{song['id']}/{voice}", "kind": "song", "song": song["id"], "voice": voice,
        "language": song["language"], "voice_language": spec.language,
        "lyrics": list(song["syllables"]), "text": song["text"], "tts_text": tts_syllables(voice, song),
        "notes": _notes_json(notes), "transpose": shift, "tempo_bpm": song["tempo_bpm"],
        "program": song["program"], "vocal_to_acc_db": vocal_to_acc_db,
        **{k: str(rel / n) for k, n in names.items()},
        "sr": sr, "channels": int(m.shape[0]), "n_samples": int(m.shape[1]),
        "duration_s": round(m.shape[1] / sr, 6), "frame_rate": FRAME_RATE,
        "note_frames": [list(x) for x in r.note_frames],
        "voiced_frames": [list(x) for x in r.voiced_frames],
        "split": "test", "shared": song["shared"], "intelligible": bool(spec.intelligible),
        "recipe_hash": h,
    }
    _write_json(d / "meta.json", rec)
    return rec


def _quantize(x: np.ndarray, bits: int = STEM_BITS) -> np.ndarray:
    """Round float audio to the ``bits``-bit PCM grid (values stay float32)."""
    scale = float(2 ** (bits - 1))
    return (np.round(x.astype(np.float64) * scale) / scale).astype(np.float32)


def _item_json(item: Phrase | Song) -> dict:
    """JSON form of a phrase/song recipe (also what the jobs receive)."""
    d = {k: v for k, v in asdict(item).items() if k not in ("lyrics", "notes")}
    d.update(syllables=list(item.lyrics.syllables), tts=list(item.lyrics.tts),
             text=item.lyrics.text, notes=_notes_json(item.notes))
    return d


# ---------------------------------------------------------------------------------- main


def make_corpus(out_dir: str | Path, seed: int = 0, voices: list[str] | tuple[str, ...] | None = None,
                n_phrases: int | None = None, size: float = 1.0, n_shared: int | None = None,
                n_songs: int | None = None, workers: int = 2, sr: int = 44100,
                config: CorpusConfig | None = None) -> Path:
    """Build (or finish) the lab corpus in ``out_dir``; returns the manifest path.

    Args:
        out_dir: corpus folder (created).
        seed: master seed.
        voices: lab voice names (default :data:`DEFAULT_VOICES`).
        n_phrases: phrases per language set (default ``round(BASE_PHRASES * size)``).
        size: scales the default counts; ``size=1`` is about a minute of singing per voice
            (8 voices build in a few minutes on 2 cores), ``size=10`` about ten minutes.
        n_shared: English phrases also sung by the non-English voices (default a third of
            ``n_phrases``, at least 1).
        n_songs: songs per language set (default ``max(1, round(size))``).
        workers: worker processes (1 = in this process).
        sr: sample rate of every file.
        config: a full :class:`CorpusConfig`; overrides the other arguments.
    Returns:
        Path of ``out_dir/manifest.json``.
    """
    if config is None:
        if size <= 0:
            raise AisingerError(f"lab corpus: size must be > 0, got {size}")
        n_ph = n_phrases if n_phrases is not None else max(1, round(BASE_PHRASES * size))
        config = CorpusConfig(
            seed=seed, voices=tuple(voices) if voices else DEFAULT_VOICES, n_phrases=n_ph,
            n_shared=n_shared if n_shared is not None else max(1, round(n_ph / 3)),
            n_songs=n_songs if n_songs is not None else max(1, round(size)), sr=sr)
    config.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    phrases = plan_phrases(config)
    songs = plan_songs(config)
    jobs: list[tuple] = []
    for voice in config.voices:
        for p in phrases:
            if _sings(voice, p.language, p.shared):
                jobs.append((_clip_job, str(out), voice, _item_json(p), config.sr))
        for s in songs:
            if _sings(voice, s.language, s.shared):
                jobs.append((_song_job, str(out), voice, _item_json(s), config.sr,
                             config.vocal_to_acc_db))
    records = _run_jobs(jobs, workers)
    manifest = _manifest(config, phrases, songs, records)
    path = out / "manifest.json"
    _write_json(path, manifest)
    return path


def _run_jobs(jobs: list[tuple], workers: int) -> list[dict]:
    """Run ``(fn, *args)`` jobs, in order of submission for the result list."""
    if workers <= 1 or len(jobs) <= 1:
        return [fn(*args) for fn, *args in track(jobs, total=len(jobs), description="lab corpus")]
    results: list[dict | None] = [None] * len(jobs)
    ctx = multiprocessing.get_context("spawn")  # no fork: the parent may hold threads
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = {pool.submit(fn, *args): i for i, (fn, *args) in enumerate(jobs)}
        for fut in track(cf.as_completed(futures), total=len(futures), description="lab corpus"):
            results[futures[fut]] = fut.result()
    return results  # type: ignore[return-value]


def _manifest(cfg: CorpusConfig, phrases: list[Phrase], songs: list[Song],
              records: list[dict]) -> dict:
    voices = {}
    for v in cfg.voices:
        spec = voice_spec(v)
        voices[v] = {"engine": spec.engine, "tts_voice": spec.voice,
                     "foreign_tts_voice": spec.foreign_voice, "language": spec.language,
                     "gender": spec.gender, "transpose": voice_transpose(v),
                     "intelligible": spec.intelligible}
    cfg_json = asdict(cfg)
    cfg_json["voices"] = list(cfg.voices)
    return {
        "format": CORPUS_FORMAT, "version": CORPUS_VERSION, "config": cfg_json,
        "sr": cfg.sr, "frame_rate": FRAME_RATE,
        "notes": ("Melodies are written in a female range; male voices sing them "
                  f"{-MALE_TRANSPOSE} semitones lower (clip 'transpose'). Parallel clips share "
                  "note timing frame for frame and the expressive F0 contour. espeak-ng "
                  "Mandarin/Cantonese voices are not intelligible to ASR (intelligible: false); "
                  "use them for timbre."),
        "voices": voices,
        "phrases": {p.id: _item_json(p) for p in phrases},
        "songs": {s.id: _item_json(s) for s in songs},
        "clips": [r for r in records if r["kind"] == "phrase"],
        "song_renditions": [r for r in records if r["kind"] == "song"],
    }


def load_manifest(path: str | Path) -> dict:
    """Read a corpus manifest (``DIR`` or ``DIR/manifest.json``)."""
    p = Path(path)
    if p.is_dir():
        p = p / "manifest.json"
    try:
        m = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise AisingerError(f"{p}: cannot read lab corpus manifest ({err})") from None
    if m.get("format") != CORPUS_FORMAT:
        raise AisingerError(f"{p}: not a lab corpus manifest")
    return m


def parallel_clips(manifest: dict, voice_a: str, voice_b: str, split: str | None = None
                   ) -> list[tuple[dict, dict]]:
    """Pairs ``(clip of voice_a, clip of voice_b)`` of the same phrase (parallel renditions)."""
    by_key = {(c["voice"], c["phrase"]): c for c in manifest["clips"]}
    pairs = []
    for c in manifest["clips"]:
        if c["voice"] != voice_a or (split is not None and c["split"] != split):
            continue
        other = by_key.get((voice_b, c["phrase"]))
        if other is not None:
            pairs.append((c, other))
    return pairs
