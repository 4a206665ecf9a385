"""Random but deterministic melodies for the lab.

A melody is a list of :class:`Note` (MIDI pitch, onset and duration in seconds).  Melodies are
diatonic random walks in a major key with beat-quantised durations, so they can be put over
simple chords by :mod:`aisinger.lab.accompaniment`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from aisinger.errors import AisingerError

REGISTERS: dict[str, tuple[int, int]] = {
    "low": (53, 65),   # F3-F4
    "mid": (57, 69),   # A3-A4
    "high": (62, 74),  # D4-D5
}
"""Lowest and highest MIDI note of each register (a female-ish range; males sing an octave down)."""

MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
"""Semitone offsets of the major scale."""

BEAT_CHOICES = (0.5, 1.0, 1.0, 1.0, 1.5, 2.0)
"""Note lengths in beats to draw from (1 beat repeated: quarter notes are most common)."""

FINAL_BEATS = 2.0
"""Length in beats of the last note of a melody (a held ending)."""

REST_PROB = 0.15
"""Probability of a short rest before a note (not the first)."""

REST_BEATS = 0.5
"""Length of such a rest in beats."""

MAX_STEP = 2
"""Largest melodic step in scale degrees (with an occasional leap of LEAP_STEP)."""

LEAP_STEP = 4
LEAP_PROB = 0.15

NOTE_TIME_DECIMALS = 6
"""Note times are rounded to microseconds (readable manifests, exact JSON round trips)."""

DEFAULT_TEMPO_BPM = 100.0
DEFAULT_LEAD_IN_S = 0.3
"""Silence before the first note (seconds) so TTS onset consonants and analysers have context."""


@dataclass(frozen=True)
class Note:
    """One sung note: ``midi`` pitch (float, 69 = A4 = 440 Hz), ``start`` and ``dur`` in seconds."""

    midi: float
    start: float
    dur: float

    @property
    def end(self) -> float:
        """Offset time in seconds."""
        return self.start + self.dur

    @property
    def hz(self) -> float:
        """Pitch in Hz."""
        return midi_to_hz(self.midi)

    def to_dict(self) -> dict:
        """JSON-friendly dict."""
        return asdict(self)


def midi_to_hz(midi: float | np.ndarray) -> float | np.ndarray:
    """Convert MIDI note number(s) to Hz (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


def hz_to_midi(hz: float | np.ndarray) -> float | np.ndarray:
    """Convert Hz (> 0) to MIDI note number(s)."""
    return 69.0 + 12.0 * np.log2(np.asarray(hz, dtype=np.float64) / 440.0)


def make_melody(n_notes: int, seed: int, register: str = "mid",
                tempo_bpm: float = DEFAULT_TEMPO_BPM, lead_in_s: float = DEFAULT_LEAD_IN_S
                ) -> list[Note]:
    """A deterministic random melody.

    Args:
        n_notes: number of notes (>= 1).
        seed: RNG seed; the same arguments give the same melody.
        register: ``"low"``, ``"mid"`` or ``"high"`` (see :data:`REGISTERS`).
        tempo_bpm: beats per minute; note lengths are multiples of half a beat.
        lead_in_s: onset of the first note in seconds.
    Returns:
        ``n_notes`` :class:`Note` in time order, integer MIDI pitches in the register.
    """
    if n_notes < 1:
        raise AisingerError(f"make_melody: n_notes must be >= 1, got {n_notes}")
    if register not in REGISTERS:
        raise AisingerError(f"make_melody: unknown register {register!r}; use one of {list(REGISTERS)}")
    if tempo_bpm <= 0:
        raise AisingerError(f"make_melody: tempo_bpm must be > 0, got {tempo_bpm}")
    rng = np.random.default_rng(seed)
    lo, hi = REGISTERS[register]
    tonic = lo + int(rng.integers(0, 12))  # key: any of the 12 pitch classes
    # Scale pitches (all octaves) that fall inside the register.
    pitches = [tonic + 12 * octv + s for octv in range(-2, 3) for s in MAJOR_SCALE]
    pitches = sorted(p for p in pitches if lo <= p <= hi)
    idx = int(rng.integers(len(pitches) // 4, 3 * len(pitches) // 4 + 1))
    beat_s = 60.0 / tempo_bpm
    t = lead_in_s
    notes: list[Note] = []
    for i in range(n_notes):
        if i > 0:
            step = int(rng.integers(1, MAX_STEP + 1))
            if rng.random() < LEAP_PROB:
                step = LEAP_STEP
            direction = 1 if rng.random() < 0.5 else -1
            if not 0 <= idx + direction * step < len(pitches):
                direction = -direction
            idx = int(np.clip(idx + direction * step, 0, len(pitches) - 1))
            if rng.random() < REST_PROB:
                t += REST_BEATS * beat_s
        beats = FINAL_BEATS if i == n_notes - 1 and n_notes > 1 else float(rng.choice(BEAT_CHOICES))
        dur = beats * beat_s
        start = round(t, NOTE_TIME_DECIMALS)
        # Duration from the rounded end, so that consecutive notes never overlap by rounding.
        notes.append(Note(midi=float(pitches[idx]), start=start,
                          dur=round(round(t + dur, NOTE_TIME_DECIMALS) - start, NOTE_TIME_DECIMALS)))
        t += dur
    return notes


def transpose(notes: list[Note], semitones: float) -> list[Note]:
    """The same melody shifted by ``semitones`` (timing unchanged)."""
    return [Note(n.midi + semitones, n.start, n.dur) for n in notes]


def melody_end(notes: list[Note]) -> float:
    """Offset of the last note in seconds."""
    return max(n.end for n in notes) if notes else 0.0
