"""Synthetic singing: TTS syllables re-timed and re-pitched with the WORLD vocoder.

Each syllable is spoken by a lab TTS voice (:mod:`aisinger.tts.classic`), analysed with WORLD
(harvest F0, CheapTrick spectral envelope, D4C aperiodicity at 5 ms frames) and placed in its
note's time window: the unvoiced onset (consonants) at the start of the window, the voiced core
stretched to fill the window and the unvoiced coda at its end.  The window is the note itself,
so every voice singing the same melody has *exactly* the same note onsets and durations.
A note-level F0 contour (note pitch, natural vibrato with onset delay, portamento between
notes, a little smooth jitter) is imposed on the voiced frames and the result is re-synthesised.

Shapes: audio is float32 ``(samples,)``; F0 tracks are float32 Hz ``(frames,)`` at
:data:`aisinger.dsp.frames.FRAME_RATE` (0 = unvoiced).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import soxr

from aisinger.errors import AisingerError
from aisinger.dsp.frames import FRAME_RATE, n_frames

from aisinger.lab.melody import Note, melody_end, midi_to_hz
from aisinger.lab.psola import psola_render
from aisinger.tts.classic import VoiceSpec, speak, voice_spec

WORLD_SR = 22050
"""Sample rate (Hz) of WORLD analysis/synthesis; covers flite (16 kHz) and espeak-ng (22.05 kHz)."""

FRAME_PERIOD_MS = 5.0
"""WORLD frame period in milliseconds (2 WORLD frames per feature frame)."""

FP_S = FRAME_PERIOD_MS / 1000.0
WORLD_PER_FEATURE = int(round(1.0 / (FRAME_RATE * FP_S)))
"""WORLD frames per feature frame (FRAME_RATE = 100 -> 2)."""

HARVEST_F0_FLOOR = 60.0
HARVEST_F0_CEIL = 500.0
"""Harvest search range (Hz) for analysing speech syllables."""

CHEAPTRICK_F0_FLOOR = 71.0
"""CheapTrick/D4C floor (Hz); fixes the FFT size at 1024 for 22.05 kHz."""

SPEECH_FLOOR_DB = 40.0
"""Frames more than this many dB below the loudest frame of a syllable count as silence."""

LOW_BAND_HZ = 1000.0
"""Upper edge of the band whose energy tells vowels/sonorants from fricatives."""

LOW_BAND_VOICED_DB = 25.0
"""A frame counts as voiced only if harvest finds F0 *and* its low-band energy is within this
many dB of the syllable's maximum (harvest often calls fricatives like /s z/ voiced)."""

VOICED_GAP_FILL_S = 0.03
"""Unvoiced gaps shorter than this inside a syllable's voiced part are treated as voiced."""

ONSET_MAX_FRAC, ONSET_MAX_S = 0.3, 0.15
"""Unvoiced onset kept in a note: at most this fraction of the note and this many seconds."""

CODA_MAX_FRAC, CODA_MAX_S = 0.2, 0.10
"""Unvoiced coda kept in a note: at most this fraction of the note and this many seconds."""

NUCLEUS_DB = 8.0
"""The vowel nucleus of a voiced core: the frames around its loudest frame within this many dB
of it.  Stretching lengthens only the nucleus; the voiced consonants and transitions around it
keep their natural rate."""

SILENCE_SP = 1e-12
"""Spectral-envelope power used for silent frames (far below any speech)."""

VIBRATO_CENTS = 35.0
"""Default vibrato extent: peak deviation in cents."""

VIBRATO_HZ = 5.5
"""Default vibrato rate in Hz."""

VIBRATO_RATE_SPREAD = 0.08
"""Per-note relative random spread of the vibrato rate."""

VIBRATO_DELAY_S, VIBRATO_RAMP_S = 0.2, 0.25
"""Vibrato starts this long after the note onset and fades in over VIBRATO_RAMP_S."""

PORTAMENTO_S = 0.08
"""Default duration of the pitch glide between consecutive notes (seconds)."""

PORTAMENTO_LEAD_FRAC = 0.4
"""Fraction of the glide placed before the next note's onset."""

PORTAMENTO_MAX_GAP_S = 0.05
"""Notes separated by a longer rest get no glide."""

JITTER_CENTS = 4.0
"""Default standard deviation (cents) of the slow random pitch drift."""

JITTER_SMOOTH_S = 0.05
"""Length of the moving average that makes the jitter slow (seconds)."""

OVERLAP_TOLERANCE_S = 1e-3
"""Notes overlapping by less than this (rounding of note times) count as adjacent."""

TAIL_S = 0.3
"""Silence after the last note (seconds)."""

TARGET_RMS_DBFS = -20.0
"""Output level: RMS over the sung part, in dBFS."""

PEAK_LIMIT = 0.98
"""The output is scaled down further if its peak would exceed this."""


@dataclass
class Rendition:
    """A sung phrase and its ground truth.

    Attributes:
        audio: float32 ``(samples,)`` at ``sr``.
        sr: sample rate in Hz.
        f0: imposed F0, float32 Hz ``(n_frames(len(audio), sr),)`` at FRAME_RATE, 0 = unvoiced.
        note_frames: per note ``(start, end)`` feature-frame indices (end exclusive); identical
            for every voice singing the same notes.
        voiced_frames: per note ``(start, end)`` feature frames of its voiced (pitched) part.
        notes: the notes sung.
        voice: lab voice name.
    """

    audio: np.ndarray
    sr: int
    f0: np.ndarray
    note_frames: list[tuple[int, int]]
    voiced_frames: list[tuple[int, int]]
    notes: list[Note]
    voice: str
    syllables: list[str] = field(default_factory=list)


@dataclass
class _Syllable:
    """WORLD analysis of one spoken syllable: ``sp``/``ap`` ``(T, F)`` and frame index ranges."""

    sp: np.ndarray
    ap: np.ndarray
    onset: tuple[int, int]
    core: tuple[int, int]
    coda: tuple[int, int]
    nucleus: tuple[int, int]
    x: np.ndarray | None = None  # the spoken syllable, float64 at WORLD_SR
    f0: np.ndarray | None = None  # its harvest F0 per WORLD frame (0 = unvoiced)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(start, end)`` index ranges (end exclusive) of the True runs of a 1-D bool array."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    d = np.diff(padded)
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def _world(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """WORLD analysis of float64 speech at WORLD_SR: harvest F0, CheapTrick sp, D4C ap."""
    import pyworld as pw  # needs setuptools<81 (pinned): pyworld 0.3.5 imports pkg_resources

    f0, t = pw.harvest(x, WORLD_SR, f0_floor=HARVEST_F0_FLOOR, f0_ceil=HARVEST_F0_CEIL,
                       frame_period=FRAME_PERIOD_MS)
    sp = pw.cheaptrick(x, f0, t, WORLD_SR, f0_floor=CHEAPTRICK_F0_FLOOR)
    ap = pw.d4c(x, f0, t, WORLD_SR)
    return f0, sp, ap


def _split(x: np.ndarray, f0: np.ndarray, sp: np.ndarray, ap: np.ndarray) -> _Syllable:
    """Split the WORLD frames of one spoken syllable into unvoiced onset, voiced core, coda."""
    energy_db = 10.0 * np.log10(sp.sum(axis=1) + 1e-30)
    low_bins = int(LOW_BAND_HZ / WORLD_SR * 2 * (sp.shape[1] - 1)) + 1
    low_db = 10.0 * np.log10(sp[:, :low_bins].sum(axis=1) + 1e-30)
    speech = energy_db > energy_db.max() - SPEECH_FLOOR_DB
    s_runs = _runs(speech)
    s0, s1 = s_runs[0][0], s_runs[-1][1]
    voiced = (f0 > 0) & speech & (low_db > low_db.max() - LOW_BAND_VOICED_DB)
    gap = int(round(VOICED_GAP_FILL_S / FP_S))
    for a, b in _runs(~voiced):
        if a > 0 and b < len(voiced) and b - a <= gap:
            voiced[a:b] = True
    v_runs = _runs(voiced)
    if v_runs:
        v0, v1 = v_runs[0][0], v_runs[-1][1]
    else:  # nothing pitched (e.g. a whispered syllable): sing the whole utterance
        v0, v1 = s0, s1
    v0, v1 = max(v0, s0), min(v1, s1)
    return _Syllable(sp=sp, ap=ap, onset=(s0, v0), core=(v0, v1), coda=(v1, s1),
                     nucleus=_nucleus(low_db, v0, v1), x=x, f0=np.where(voiced, f0, 0.0))


def analyse_syllable(text: str, voice: str | VoiceSpec, language: str | None = None) -> _Syllable:
    """Speak ``text`` (in ``language``, default the voice's) and split its WORLD frames into
    unvoiced onset, voiced core and coda."""
    spec = voice_spec(voice)
    x = speak(text, spec, WORLD_SR, language=language).astype(np.float64)
    if not np.any(x):
        raise AisingerError(f"lab voice {spec.name!r} produced silence for {text!r}")
    return _split(x, *_world(x))


MCEP_ORDER = 24
"""Mel-cepstral coefficients compared when aligning a spoken line with its syllables."""


def _mcep(sp: np.ndarray) -> np.ndarray:
    import pyworld as pw

    return pw.code_spectral_envelope(np.ascontiguousarray(sp), WORLD_SR, MCEP_ORDER)[:, 1:]


def dtw_path(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Minimum-cost monotonic alignment of feature rows ``a`` ``(N, D)`` and ``b`` ``(M, D)``
    (Euclidean cost; steps (1,0), (0,1), (1,1)).  Returns ``(K, 2)`` index pairs from (0, 0)
    to (N-1, M-1)."""
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    cost = np.sqrt(np.maximum(sq, 0.0))
    n, m = cost.shape
    acc = np.empty((n, m))
    acc[0] = np.cumsum(cost[0])
    for i in range(1, n):
        diag = np.concatenate([[np.inf], acc[i - 1, :-1]])
        first = cost[i] + np.minimum(acc[i - 1], diag)  # arrive from above or diagonally
        c = np.cumsum(cost[i])
        # then any number of steps to the right: acc[i, j] = min_k<=j first[k] + c[j] - c[k]
        acc[i] = np.minimum.accumulate(first - c) + c
    i, j = n - 1, m - 1
    path = [(i, j)]
    while i > 0 or j > 0:
        if i == 0:
            j -= 1
        elif j == 0:
            i -= 1
        else:
            options = (acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])
            k = int(np.argmin(options))
            i, j = (i - 1, j - 1) if k == 0 else (i - 1, j) if k == 1 else (i, j - 1)
        path.append((i, j))
    return np.array(path[::-1])


@functools.lru_cache(maxsize=2048)
def _syllable_mcep(text: str, voice: str, language: str | None) -> np.ndarray:
    """Mel-cepstra of the speech frames of ``text`` spoken on its own (DTW template; cached:
    syllables repeat across phrases).  A light analysis: DIO F0 for CheapTrick, no D4C."""
    import pyworld as pw

    x = speak(text, voice_spec(voice), WORLD_SR, language=language).astype(np.float64)
    if not np.any(x):
        raise AisingerError(f"lab voice {voice!r} produced silence for {text!r}")
    f0, t = pw.dio(x, WORLD_SR, f0_floor=HARVEST_F0_FLOOR, f0_ceil=HARVEST_F0_CEIL,
                   frame_period=FRAME_PERIOD_MS)
    sp = pw.cheaptrick(x, f0, t, WORLD_SR, f0_floor=CHEAPTRICK_F0_FLOOR)
    energy_db = 10.0 * np.log10(sp.sum(axis=1) + 1e-30)
    runs = _runs(energy_db > energy_db.max() - SPEECH_FLOOR_DB)
    mcep = _mcep(sp[runs[0][0]:runs[-1][1]])
    mcep.setflags(write=False)
    return mcep


def analyse_line(syllables: list[str], voice: str | VoiceSpec, language: str | None = None
                 ) -> list[_Syllable]:
    """Speak the syllables as ONE utterance (natural coarticulation and prosody) and cut it
    into one :class:`_Syllable` per syllable.

    The cut points come from a DTW alignment (mel-cepstra) of the line with the syllables
    spoken one by one, whose boundaries are known.  Measured on Kokoro Mandarin (docs/lab.md):
    isolated syllables sung to a melody are hard to understand (Whisper CER ~1), whereas a
    spoken line stretched 2-3x with a stepped melody stays intelligible.
    """
    spec = voice_spec(voice)
    lang = language or spec.language
    text = ("".join(syllables) if lang in ("zh", "yue", "ja") else " ".join(syllables))
    x = speak(text, spec, WORLD_SR, language=language).astype(np.float64)
    if not np.any(x):
        raise AisingerError(f"lab voice {spec.name!r} produced silence for {text!r}")
    f0, sp, ap = _world(x)
    speech = _split(x, f0, sp, ap)
    s0, s1 = speech.onset[0], speech.coda[1]
    feats, starts = [], []
    offset = 0
    for syl in syllables:
        mcep = _syllable_mcep(syl, spec.name, language)
        feats.append(mcep)
        starts.append(offset)
        offset += len(mcep)
    path = dtw_path(_mcep(sp[s0:s1]), np.concatenate(feats))
    bounds = [s0]
    for start in starts[1:]:
        bounds.append(s0 + int(path[np.searchsorted(path[:, 1], start), 0]))
    bounds.append(s1)
    hop = FP_S * WORLD_SR
    out = []
    for k in range(len(syllables)):
        a, b = bounds[k], max(bounds[k + 1], bounds[k] + 2)
        xs = x[int(a * hop):int(b * hop)]
        out.append(_split(xs, f0[a:b], sp[a:b], ap[a:b]))
    return out


def _nucleus(energy_db: np.ndarray, a: int, b: int) -> tuple[int, int]:
    """Frame range of the vowel nucleus within ``[a, b)``: the run around the loudest frame
    that stays within NUCLEUS_DB of it."""
    peak = a + int(np.argmax(energy_db[a:b]))
    loud = energy_db > energy_db[peak] - NUCLEUS_DB
    n0, n1 = peak, peak + 1
    while n0 > a and loud[n0 - 1]:
        n0 -= 1
    while n1 < b and loud[n1]:
        n1 += 1
    return n0, n1


def _interp_frames(x: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Rows of ``x`` ``(T, F)`` at fractional indices ``pos`` ``(N,)`` (linear interpolation)."""
    pos = np.clip(pos, 0, x.shape[0] - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, x.shape[0] - 1)
    w = (pos - lo)[:, None]
    return x[lo] * (1.0 - w) + x[hi] * w


def _segment_positions(a: int, b: int, n_out: int) -> np.ndarray:
    """Source frame positions that squeeze frames ``[a, b)`` into ``n_out`` frames (n_out <= b - a)."""
    if n_out <= 0:
        return np.zeros(0)
    if n_out == 1:
        return np.array([(a + b - 1) / 2.0])
    return np.linspace(a, b - 1, n_out)


def _core_positions(core: tuple[int, int], nucleus: tuple[int, int], n_out: int) -> np.ndarray:
    """Source positions that fit the voiced core into ``n_out`` frames.

    Stretching lengthens only the vowel ``nucleus`` (the frames before and after it keep their
    natural rate); compression is uniform over the core.
    """
    a, b = core
    n0, n1 = nucleus
    n_in = b - a
    if n_out <= n_in:
        return _segment_positions(a, b, n_out)
    head = np.arange(a, n0, dtype=np.float64)
    tail = np.arange(n1, b, dtype=np.float64)
    middle = np.linspace(n0, n1 - 1, n_out - len(head) - len(tail))
    return np.concatenate([head, middle, tail])


def _place(syl: _Syllable, n: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Fit a syllable into a note window of ``n`` WORLD frames.

    Returns ``(sp, ap, voiced_start, voiced_end, pos)``: ``(n, F)`` envelopes, the voiced frame
    range within the window and the source frame position of each of the ``n`` frames.
    """
    on_len = syl.onset[1] - syl.onset[0]
    coda_len = syl.coda[1] - syl.coda[0]
    on_t = min(on_len, int(ONSET_MAX_FRAC * n), int(ONSET_MAX_S / FP_S))
    coda_t = min(coda_len, int(CODA_MAX_FRAC * n), int(CODA_MAX_S / FP_S))
    core_t = n - on_t - coda_t
    pos = np.concatenate([
        _segment_positions(*syl.onset, on_t),
        _core_positions(syl.core, syl.nucleus, core_t),
        _segment_positions(*syl.coda, coda_t),
    ])
    log_sp = _interp_frames(np.log(syl.sp + SILENCE_SP), pos)
    ap = _interp_frames(syl.ap, pos)
    return np.exp(log_sp), ap, on_t, on_t + core_t, pos


def f0_contour(notes: list[Note], n_world: int, seed: int = 0,
               vibrato_cents: float = VIBRATO_CENTS, vibrato_hz: float = VIBRATO_HZ,
               portamento_s: float = PORTAMENTO_S, jitter_cents: float = JITTER_CENTS
               ) -> np.ndarray:
    """Continuous pitch contour in MIDI units, ``(n_world,)`` at WORLD frames (5 ms).

    Note pitch inside each note window, held through rests, raised-cosine portamento across
    note boundaries, vibrato (peak ``vibrato_cents``, rate ``vibrato_hz`` +- a per-note spread,
    starting VIBRATO_DELAY_S into each note) and smoothed Gaussian jitter (std
    ``jitter_cents``).  Deterministic for a given ``seed``.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n_world) * FP_S
    order = sorted(notes, key=lambda n: n.start)
    # Step curve: each frame takes the pitch of the latest note started (first note before it).
    starts = np.array([n.start for n in order])
    idx = np.clip(np.searchsorted(starts, t + FP_S / 2, side="right") - 1, 0, len(order) - 1)
    midi = np.array([n.midi for n in order])[idx]
    # Portamento between consecutive notes.
    glide = int(round(portamento_s / FP_S))
    if glide > 1:
        for prev, nxt in zip(order[:-1], order[1:]):
            if nxt.start - prev.end > PORTAMENTO_MAX_GAP_S:
                continue
            c = int(round(nxt.start / FP_S))
            a = max(c - int(round(PORTAMENTO_LEAD_FRAC * glide)), 0)
            b = min(a + glide, n_world)
            u = (np.arange(a, b) - a + 0.5) / glide
            midi[a:b] = prev.midi + (nxt.midi - prev.midi) * (1 - np.cos(np.pi * u)) / 2
    # Vibrato, one random rate/phase per note.
    cents = np.zeros(n_world)
    for note in order:
        rate = vibrato_hz * (1.0 + rng.uniform(-VIBRATO_RATE_SPREAD, VIBRATO_RATE_SPREAD))
        phase = rng.uniform(0, 2 * np.pi)
        a, b = int(round(note.start / FP_S)), min(int(round(note.end / FP_S)), n_world)
        tr = t[a:b] - note.start - VIBRATO_DELAY_S
        env = np.clip(tr / VIBRATO_RAMP_S, 0.0, 1.0)
        cents[a:b] += vibrato_cents * env * np.sin(2 * np.pi * rate * np.maximum(tr, 0) + phase)
    # Slow jitter.
    width = max(int(round(JITTER_SMOOTH_S / FP_S)), 1)
    noise = rng.standard_normal(n_world + width - 1)
    smooth = np.convolve(noise, np.ones(width) / width, mode="valid")
    smooth *= jitter_cents / (smooth.std() + 1e-12) if jitter_cents > 0 else 0.0
    return midi + (cents + smooth) / 100.0


def _check_inputs(syllables: list[str], notes: list[Note], sr: int) -> None:
    if len(syllables) != len(notes):
        raise AisingerError(
            f"sing: {len(syllables)} syllables for {len(notes)} notes; need one syllable per note")
    if not notes:
        raise AisingerError("sing: no notes to sing")
    if sr <= 0:
        raise AisingerError(f"sing: bad sample rate {sr}")
    for i, n in enumerate(notes):
        if n.dur <= 0 or n.start < 0:
            raise AisingerError(f"sing: note {i} has bad timing (start={n.start}, dur={n.dur})")
    ordered = sorted(notes, key=lambda n: n.start)
    for a, b in zip(ordered[:-1], ordered[1:]):
        if b.start < a.end - OVERLAP_TOLERANCE_S:
            raise AisingerError(
                f"sing: notes overlap at {b.start:.3f} s; one voice sings one note at a time")


def render(syllables: list[str], notes: list[Note], voice: str | VoiceSpec, sr: int = 44100,
           seed: int = 0, vibrato_cents: float = VIBRATO_CENTS, vibrato_hz: float = VIBRATO_HZ,
           portamento_s: float = PORTAMENTO_S, jitter_cents: float = JITTER_CENTS,
           tail_s: float = TAIL_S, normalize: bool = True, language: str | None = None,
           renderer: str | None = None) -> Rendition:
    """Sing one syllable per note with a lab voice; see the module docstring.

    Args:
        syllables: one text syllable per note (spoken separately by the TTS).
        notes: the melody; notes must not overlap.
        voice: lab voice name (see :data:`aisinger.tts.classic.VOICES`).
        sr: output sample rate in Hz.
        seed: seeds vibrato rate/phase and jitter (the TTS itself is deterministic).
        tail_s: silence after the last note in seconds.
        normalize: scale to TARGET_RMS_DBFS over the sung span (peak <= PEAK_LIMIT).
        language: language of the syllables when not the voice's own (e.g. ``"en"`` for
            English lyrics sung by a Chinese voice).
        renderer: ``"world"`` (WORLD resynthesis) or ``"psola"`` (the spoken waveform
            re-pitched by TD-PSOLA, see :mod:`aisinger.lab.psola`); None: :func:`default_renderer`.
    Returns:
        A :class:`Rendition`; its audio lasts ``melody_end(notes) + tail_s`` rounded up to 10 ms.
    """
    _check_inputs(syllables, notes, sr)
    spec = voice_spec(voice)
    renderer = renderer or default_renderer(spec)
    if renderer not in RENDERERS:
        raise AisingerError(f"sing: unknown renderer {renderer!r}; use one of {RENDERERS}")
    import pyworld as pw  # needs setuptools<81 (pinned): pyworld 0.3.5 imports pkg_resources
    k100 = int(math.ceil(round((melody_end(notes) + tail_s) * FRAME_RATE, 6)))
    n_world = WORLD_PER_FEATURE * k100 + 1
    analysed: dict[str, _Syllable] = {}
    per_note: list[_Syllable] | None = None
    if spec.engine in LINE_ENGINES:
        per_note = analyse_line(syllables, spec, language)
        first = per_note[0]
    else:
        first = analyse_syllable(syllables[0], spec, language)
        analysed[syllables[0]] = first
    n_bins = first.sp.shape[1]
    sp = np.full((n_world, n_bins), SILENCE_SP)
    ap = np.ones((n_world, n_bins))
    voiced = np.zeros(n_world, dtype=bool)
    note_frames, voiced_frames = [], []
    placed = []
    for k, (text, note) in enumerate(zip(syllables, notes)):
        if per_note is not None:
            syl = per_note[k]
        else:
            if text not in analysed:
                analysed[text] = analyse_syllable(text, spec, language)
            syl = analysed[text]
        a = int(round(note.start / FP_S))
        b = min(int(round(note.end / FP_S)), n_world)
        n_sp, n_ap, v0, v1, pos = _place(syl, b - a)
        sp[a:b], ap[a:b] = n_sp, n_ap
        placed.append((a, b, syl, pos, v0, v1))
        voiced[a + v0:a + v1] = True
        note_frames.append((a // WORLD_PER_FEATURE, b // WORLD_PER_FEATURE))
        voiced_frames.append(((a + v0 + 1) // WORLD_PER_FEATURE, (a + v1) // WORLD_PER_FEATURE))
    midi = f0_contour(notes, n_world, seed, vibrato_cents, vibrato_hz, portamento_s, jitter_cents)
    f0_world = np.where(voiced, midi_to_hz(midi), 0.0)
    if renderer == "psola":
        y = psola_render(placed, f0_world, WORLD_SR, FP_S, formant=spec.formant)
    else:
        if spec.formant != 1.0:
            sp = warp_envelope(sp, spec.formant)
        y = pw.synthesize(np.ascontiguousarray(f0_world), np.ascontiguousarray(sp),
                          np.ascontiguousarray(ap), WORLD_SR, FRAME_PERIOD_MS)
    if sr != WORLD_SR:
        y = soxr.resample(y, WORLD_SR, sr)
    n_out = int(math.ceil(k100 * sr / FRAME_RATE))
    y = np.pad(y, (0, max(n_out - len(y), 0)))[:n_out]
    if normalize:
        y = _normalize(y, sr, notes)
    f0 = f0_world[::WORLD_PER_FEATURE].astype(np.float32)
    assert f0.shape[0] == n_frames(n_out, sr)
    return Rendition(audio=y.astype(np.float32), sr=sr, f0=f0, note_frames=note_frames,
                     voiced_frames=voiced_frames, notes=list(notes), voice=spec.name,
                     syllables=list(syllables))


RENDERERS = ("world", "psola")

LINE_ENGINES = ("kokoro", "piper")
"""Engines whose lines are spoken whole and cut into syllables (:func:`analyse_line`); the
flite/espeak-ng voices speak each syllable on its own, as before."""


def default_renderer(spec: VoiceSpec) -> str:
    """The renderer chosen by measurement (docs/lab.md, "Singing renderer"): WORLD for every
    voice.  On 12 Kokoro/piper phrases WORLD kept more naturalness (DistillMOS 3.00 vs 2.74
    for TD-PSOLA, spoken lines 4.01) and followed the melody more closely (median 1.8 vs 3.6
    cents); PSOLA kept slightly more of the speaker's similarity (0.673 vs 0.649)."""
    return "world"


def warp_envelope(sp: np.ndarray, factor: float) -> np.ndarray:
    """Spectral envelopes ``(T, F)`` with every formant moved by ``factor`` (``sp'(f) =
    sp(f / factor)``; beyond the top bin the last value is held)."""
    bins = np.arange(sp.shape[1], dtype=np.float64)
    src = np.clip(bins / factor, 0, sp.shape[1] - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, sp.shape[1] - 1)
    w = src - lo
    return sp[:, lo] * (1 - w) + sp[:, hi] * w


def _normalize(y: np.ndarray, sr: int, notes: list[Note]) -> np.ndarray:
    """Scale ``y`` to TARGET_RMS_DBFS over the sung span, peak at most PEAK_LIMIT."""
    a = int(min(n.start for n in notes) * sr)
    b = int(melody_end(notes) * sr)
    rms = float(np.sqrt(np.mean(y[a:b] ** 2))) if b > a else 0.0
    if rms <= 0:
        raise AisingerError("sing: synthesis produced silence")
    gain = 10 ** (TARGET_RMS_DBFS / 20) / rms
    peak = float(np.abs(y).max()) * gain
    if peak > PEAK_LIMIT:
        gain *= PEAK_LIMIT / peak
    return y * gain


def sing_with_f0(syllables: list[str], notes: list[Note], voice: str | VoiceSpec,
                 sr: int = 44100, seed: int = 0, vibrato_cents: float = VIBRATO_CENTS,
                 vibrato_hz: float = VIBRATO_HZ, portamento_s: float = PORTAMENTO_S,
                 **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`sing` but also returns the imposed F0.

    Returns:
        ``(audio, f0)``: float32 ``(samples,)`` at ``sr`` and float32 Hz
        ``(n_frames(samples, sr),)`` at FRAME_RATE (0 = unvoiced).
    """
    r = render(syllables, notes, voice, sr=sr, seed=seed, vibrato_cents=vibrato_cents,
               vibrato_hz=vibrato_hz, portamento_s=portamento_s, **kwargs)
    return r.audio, r.f0


def sing(syllables: list[str], notes: list[Note], voice: str | VoiceSpec, sr: int = 44100,
         seed: int = 0, vibrato_cents: float = VIBRATO_CENTS, vibrato_hz: float = VIBRATO_HZ,
         portamento_s: float = PORTAMENTO_S, **kwargs) -> np.ndarray:
    """Sing ``syllables`` (one per note) on ``notes`` with a lab voice.

    Returns:
        float32 ``(samples,)`` at ``sr``, RMS about -20 dBFS over the sung part.
    """
    return sing_with_f0(syllables, notes, voice, sr=sr, seed=seed, vibrato_cents=vibrato_cents,
                        vibrato_hz=vibrato_hz, portamento_s=portamento_s, **kwargs)[0]
