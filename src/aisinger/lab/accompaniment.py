"""Accompaniment under a lab melody: chords, bass and drums rendered by FluidSynth.

The melody's key is estimated from its pitch classes, a diatonic triad is chosen for every
chord window (CHORD_BEATS beats, grid starting at the first note), and a Standard MIDI File
(format 0) with bass, a chord instrument and General-MIDI drums on channel 10 is written by a
small built-in writer and rendered with ``fluidsynth`` and the FluidR3 GM soundfont.
FluidSynth's float output is deterministic, so the same arguments give bit-identical audio.
"""

from __future__ import annotations

import math
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from aisinger.errors import AisingerError
from aisinger.io.programs import run_to_wav
from aisinger.lab.melody import DEFAULT_TEMPO_BPM, MAJOR_SCALE, Note, melody_end

SOUNDFONT_CANDIDATES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)
"""Where Debian/Ubuntu/Fedora put a General-MIDI soundfont."""

PPQ = 480
"""MIDI ticks per quarter note."""

CHORD_BEATS = 2
"""Beats per chord window."""

DIATONIC_DEGREES = (0, 1, 2, 3, 4, 5)
"""Scale degrees used as chord roots (I ii iii IV V vi; no diminished vii)."""

PROGRAM_PIANO = 0
PROGRAM_BASS = 33  # GM "Electric Bass (finger)"
BASS_CHANNEL, CHORD_CHANNEL, DRUM_CHANNEL = 1, 0, 9  # channel 10 (index 9) is GM percussion
KICK, SNARE, HIHAT = 36, 38, 42  # GM drum keys
CHORD_OCTAVE_MIDI = 55
"""Chord voicings are placed in [CHORD_OCTAVE_MIDI, CHORD_OCTAVE_MIDI + 12)."""
BASS_OCTAVE_MIDI = 36
"""Bass notes are placed in [BASS_OCTAVE_MIDI, BASS_OCTAVE_MIDI + 12)."""
VELOCITY = {"chord": 62, "bass": 80, "kick": 90, "snare": 70, "hihat": 45}
"""Base MIDI velocities; the seed adds small humanising variations."""
VELOCITY_JITTER = 6
TAIL_S = 1.0
"""Time after the last note for the release (seconds) when ``seconds`` is not given."""
FLUIDSYNTH_TIMEOUT_S = 120
TARGET_RMS_DBFS = -20.0
"""Output level of :func:`accompany` (RMS over the whole output, dBFS)."""
PEAK_LIMIT = 0.98


@dataclass(frozen=True)
class _Event:
    tick: int
    order: int  # note-offs (0) before note-ons (1) at the same tick
    data: bytes


def _vlq(n: int) -> bytes:
    """MIDI variable-length quantity."""
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def write_smf(path: Path, events: list[tuple[int, bytes]], tempo_bpm: float, end_tick: int) -> None:
    """Write a format-0 Standard MIDI File.

    Args:
        events: ``(tick, message bytes)`` channel messages (any order; note-offs are sorted
            before note-ons at the same tick).
        end_tick: tick of the end-of-track meta event.
    """
    evs = sorted(
        (_Event(t, 0 if (d[0] & 0xF0) == 0x80 else 1, d) for t, d in events),
        key=lambda e: (e.tick, e.order))
    body = bytearray()
    usec = int(round(60_000_000 / tempo_bpm))
    body += _vlq(0) + b"\xff\x51\x03" + usec.to_bytes(3, "big")
    last = 0
    for e in evs:
        body += _vlq(e.tick - last) + e.data
        last = e.tick
    body += _vlq(max(end_tick - last, 0)) + b"\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, PPQ)
    path.write_bytes(header + b"MTrk" + struct.pack(">I", len(body)) + bytes(body))


def estimate_key(notes: list[Note]) -> int:
    """Tonic pitch class (0 = C) of the major key that best fits the melody (duration weighted)."""
    weights = np.zeros(12)
    for n in notes:
        weights[int(round(n.midi)) % 12] += n.dur
    scores = [sum(weights[(k + s) % 12] for s in MAJOR_SCALE) for k in range(12)]
    last_pc = int(round(notes[-1].midi)) % 12
    # Ties: prefer the key whose tonic is the last note (melodies tend to end on the tonic).
    return max(range(12), key=lambda k: (round(scores[k], 6), k == last_pc))


def _triad(tonic: int, degree: int) -> list[int]:
    """Pitch classes of the diatonic triad on ``degree`` of the major key on ``tonic``."""
    return [(tonic + MAJOR_SCALE[(degree + i) % 7]) % 12 for i in (0, 2, 4)]


def choose_chords(notes: list[Note], tonic: int, beat_s: float, origin: float, n_windows: int,
                  rng: np.random.Generator) -> list[int]:
    """Chord degree for each window: the triad covering most of the melody sounding in it."""
    degrees = []
    prev = 0
    for w in range(n_windows):
        a = origin + w * CHORD_BEATS * beat_s
        b = a + CHORD_BEATS * beat_s
        weights = np.zeros(12)
        for n in notes:
            overlap = min(n.end, b) - max(n.start, a)
            if overlap > 0:
                weights[int(round(n.midi)) % 12] += overlap
        scores = []
        for d in DIATONIC_DEGREES:
            pcs = _triad(tonic, d)
            # Favour I/IV/V and moving chords slightly; tiny random tie-break from the seed.
            bonus = 0.05 * beat_s * (d in (0, 3, 4)) + 0.02 * beat_s * (d != prev)
            scores.append(sum(weights[p] for p in pcs) + bonus + 1e-3 * rng.random())
        prev = DIATONIC_DEGREES[int(np.argmax(scores))]
        degrees.append(prev)
    return degrees


def _place_pc(pc: int, low: int) -> int:
    """The MIDI note of pitch class ``pc`` in ``[low, low + 12)``."""
    return low + (pc - low) % 12


def build_events(notes: list[Note], seed: int, program: int, tempo_bpm: float,
                 total_s: float) -> list[tuple[int, bytes]]:
    """MIDI channel events (tick, bytes) of the accompaniment for ``notes``."""
    rng = np.random.default_rng(seed)
    beat_s = 60.0 / tempo_bpm
    origin = min(n.start for n in notes)
    end = melody_end(notes)
    n_windows = max(int(math.ceil((end - origin) / (CHORD_BEATS * beat_s) - 1e-9)), 1)
    tonic = estimate_key(notes)
    degrees = choose_chords(notes, tonic, beat_s, origin, n_windows, rng)

    def tick(sec: float) -> int:
        return int(round(sec / beat_s * PPQ))

    def vel(kind: str) -> int:
        return int(np.clip(VELOCITY[kind] + rng.integers(-VELOCITY_JITTER, VELOCITY_JITTER + 1), 1, 127))

    def note(ch: int, key: int, t0: float, t1: float, v: int) -> list[tuple[int, bytes]]:
        return [(tick(t0), bytes([0x90 | ch, key, v])), (tick(t1), bytes([0x80 | ch, key, 0]))]

    ev: list[tuple[int, bytes]] = [
        (0, bytes([0xC0 | CHORD_CHANNEL, program & 0x7F])),
        (0, bytes([0xC0 | BASS_CHANNEL, PROGRAM_BASS])),
    ]
    ghost_hat = rng.random() < 0.5  # pattern variant: 8th-note or quarter-note hi-hat
    for w, deg in enumerate(degrees):
        a = origin + w * CHORD_BEATS * beat_s
        b = min(a + CHORD_BEATS * beat_s, total_s)
        if b <= a:
            break
        pcs = _triad(tonic, deg)
        v = vel("chord")
        for pc in pcs:
            ev += note(CHORD_CHANNEL, _place_pc(pc, CHORD_OCTAVE_MIDI), a, b, v)
        ev += note(BASS_CHANNEL, _place_pc(pcs[0], BASS_OCTAVE_MIDI), a, b, vel("bass"))
        for beat in range(CHORD_BEATS):
            tb = a + beat * beat_s
            if tb >= b:
                break
            drum = KICK if beat % 2 == 0 else SNARE
            ev += note(DRUM_CHANNEL, drum, tb, tb + beat_s / 2, vel("kick" if drum == KICK else "snare"))
            steps = 2 if ghost_hat else 1
            for s in range(steps):
                th = tb + s * beat_s / steps
                ev += note(DRUM_CHANNEL, HIHAT, th, th + beat_s / 4, vel("hihat"))
    return ev


def soundfont() -> Path:
    """Path of a General-MIDI soundfont, or :class:`AisingerError`."""
    for cand in SOUNDFONT_CANDIDATES:
        if Path(cand).exists():
            return Path(cand)
    raise AisingerError(
        "no General-MIDI soundfont found (looked for FluidR3_GM.sf2); install fluid-soundfont-gm")


def render_midi(midi_path: Path, sr: int) -> np.ndarray:
    """Render a MIDI file with fluidsynth; returns float32 ``(2, samples)`` at ``sr``."""
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise AisingerError("fluidsynth not found on PATH; install it (e.g. `apt-get install fluidsynth`)")
    audio, file_sr = run_to_wav(
        lambda out: [exe, "-ni", "-q", "-F", str(out), "-T", "wav", "-O", "float", "-r", str(sr),
                     "-o", "synth.cpu-cores=1", str(soundfont()), str(midi_path)],
        timeout_s=FLUIDSYNTH_TIMEOUT_S, what=f"rendering {midi_path}")
    if file_sr != sr:
        audio = soxr.resample(audio.T, file_sr, sr).T.astype(np.float32)
    if audio.shape[0] == 1:
        audio = np.repeat(audio, 2, axis=0)
    return np.ascontiguousarray(audio[:2])


def accompany(notes: list[Note], sr: int = 44100, seconds: float | None = None, seed: int = 0,
              program: int = PROGRAM_PIANO, tempo_bpm: float = DEFAULT_TEMPO_BPM,
              midi_out: str | Path | None = None, normalize: bool = True) -> np.ndarray:
    """Render an accompaniment for ``notes``.

    Args:
        notes: the melody (its tempo should be ``tempo_bpm``; the beat grid starts at the first
            note onset).
        sr: output sample rate in Hz.
        seconds: output length in seconds (default: melody end + TAIL_S); the audio is padded
            or cut to exactly ``round(seconds * sr)`` samples.
        seed: chord tie-breaks, drum-pattern variant and velocity humanisation.
        program: General-MIDI program (0-127) of the chord instrument.
        midi_out: also keep the generated MIDI file there.
        normalize: scale to TARGET_RMS_DBFS (peak at most PEAK_LIMIT); otherwise FluidSynth's
            default gain.
    Returns:
        float32 ``(2, samples)`` stereo.
    """
    if not notes:
        raise AisingerError("accompany: no notes")
    if not 0 <= program <= 127:
        raise AisingerError(f"accompany: GM program must be 0-127, got {program}")
    total = float(seconds) if seconds is not None else melody_end(notes) + TAIL_S
    if total <= 0:
        raise AisingerError(f"accompany: bad length {seconds} s")
    events = build_events(notes, seed, program, tempo_bpm, total)
    end_tick = int(round(total / (60.0 / tempo_bpm) * PPQ))
    n_out = int(round(total * sr))
    with tempfile.TemporaryDirectory(prefix="aisinger-midi-") as tmp:
        mid = Path(tmp) / "song.mid"
        write_smf(mid, events, tempo_bpm, end_tick)
        if midi_out is not None:
            shutil.copyfile(mid, midi_out)
        audio = render_midi(mid, sr)
    if audio.shape[1] < n_out:
        audio = np.pad(audio, ((0, 0), (0, n_out - audio.shape[1])))
    audio = audio[:, :n_out]
    if normalize:
        rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
        if rms <= 0:
            raise AisingerError("accompany: fluidsynth rendered silence")
        gain = min(10 ** (TARGET_RMS_DBFS / 20) / rms, PEAK_LIMIT / float(np.abs(audio).max()))
        audio = audio * np.float32(gain)
    return np.ascontiguousarray(audio, dtype=np.float32)
