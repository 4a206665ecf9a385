"""TD-PSOLA singing render: the spoken syllable's own waveform, re-timed and re-pitched.

WORLD resynthesis rebuilds every period from a smoothed envelope and an aperiodicity model;
on natural (neural) speech that costs much of its naturalness (measured in docs/lab.md).
TD-PSOLA keeps the waveform: two-period Hann grains are cut around the source's pitch marks
and overlap-added at the target's pitch marks, so the timbre, breathiness and consonants are
the speaker's own.

Input is the plan :func:`aisinger.lab.sing.render` made: for each note the WORLD frame window
``[a, b)``, the syllable analysis (waveform ``x`` at ``sr``, harvest F0, frame ranges), the
source frame position of every output frame (``pos``) and the voiced range ``[v0, v1)``
within the window.  Voiced frames get pitch-synchronous grains at the target F0; the unvoiced
onset/coda (consonants) are copied by plain overlap-add at the source rate along ``pos``.
``formant`` != 1 resamples each voiced grain (a shorter grain raises every formant by the same
factor) without changing the pitch, which makes a new timbre from one voice.

Output amplitude is normalised by the (smoothed) sum of the windows, so re-pitching does not
change loudness.  Everything is deterministic.
"""

from __future__ import annotations

import numpy as np

UNVOICED_WIN_S = 0.02
"""Grain length for the unvoiced parts (seconds); hop is a quarter of it."""
MARK_SNAP = 0.3
"""Source pitch marks are moved to the waveform peak within this fraction of a period."""
WSUM_SMOOTH_S = 0.004
WSUM_FLOOR = 0.25
DEFAULT_F0 = 150.0  # Hz, for a voiced frame with no analysed F0 (gap-filled frames)


def pitch_marks(x: np.ndarray, f0: np.ndarray, sr: int, hop: float) -> tuple[np.ndarray, np.ndarray]:
    """Source pitch marks (sample positions) over the voiced frames of ``x`` and the local
    period (samples) at each; marks follow the F0 and snap to the dominant-polarity peak."""
    voiced = f0 > 0
    if not voiced.any():
        return np.zeros(0), np.zeros(0)
    filled = np.where(voiced, f0, 0.0)
    sign = 1.0 if x.max() >= -x.min() else -1.0
    marks, periods = [], []
    t = float(np.flatnonzero(voiced)[0] * hop)
    end = float((np.flatnonzero(voiced)[-1] + 1) * hop)
    while t < end and t < len(x):
        j = min(int(t / hop), len(f0) - 1)
        f = filled[j] if filled[j] > 0 else (filled[filled > 0].mean())
        period = sr / f
        if voiced[j]:
            r = int(MARK_SNAP * period)
            lo, hi = max(int(t) - r, 0), min(int(t) + r + 1, len(x))
            if hi > lo:
                t = float(lo + int(np.argmax(sign * x[lo:hi])))
                marks.append(t)
                periods.append(period)
        t += period
    return np.asarray(marks, dtype=np.float64), np.asarray(periods, dtype=np.float64)


def _grain(x: np.ndarray, centre: float, half: int, length: int | None = None) -> np.ndarray:
    """A Hann-windowed grain of ``2 * half`` samples around ``centre`` (zero outside ``x``),
    resampled to ``length`` samples when given."""
    c = int(round(centre))
    idx = np.arange(c - half, c + half)
    g = np.where((idx >= 0) & (idx < len(x)), x[np.clip(idx, 0, len(x) - 1)], 0.0)
    g = g * np.hanning(2 * half + 2)[1:-1]
    if length is not None and length != len(g):
        g = np.interp(np.linspace(0, len(g) - 1, length), np.arange(len(g)), g)
    return g


def _add(out: np.ndarray, wsum: np.ndarray, grain: np.ndarray, window: np.ndarray, at: float) -> None:
    start = int(round(at)) - len(grain) // 2
    a, b = max(start, 0), min(start + len(grain), len(out))
    if b > a:
        out[a:b] += grain[a - start:b - start]
        wsum[a:b] += window[a - start:b - start]


def psola_render(placed: list, f0_world: np.ndarray, sr: int, frame_s: float,
                 formant: float = 1.0) -> np.ndarray:
    """Render the planned notes (see the module docstring); float64 ``(samples,)`` at ``sr``."""
    hop = frame_s * sr  # samples per WORLD frame (may be fractional)
    n_out = int(np.ceil(len(f0_world) * hop))
    out = np.zeros(n_out)
    wsum = np.zeros(n_out)
    uv_half = int(UNVOICED_WIN_S * sr / 2)
    uv_hop = uv_half / 2
    uv_win = np.hanning(2 * uv_half + 2)[1:-1]
    marks_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for a, b, syl, pos, v0, v1 in placed:
        x = syl.x
        key = id(syl)
        if key not in marks_cache:
            marks_cache[key] = pitch_marks(x, syl.f0, sr, hop)
        marks, periods = marks_cache[key]
        n = b - a

        def source_sample(t_out: float) -> float:
            k = t_out / hop - a  # fractional frame inside the note window
            return float(np.interp(k, np.arange(n), pos)) * hop

        # unvoiced onset and coda: overlap-add at the source rate along pos
        for lo, hi in ((0, v0), (v1, n)):
            if hi <= lo:
                continue
            t = (a + lo) * hop
            t_end = (a + hi) * hop
            while t < t_end:
                _add(out, wsum, _grain(x, source_sample(t), uv_half), uv_win, t)
                t += uv_hop
        # voiced core: pitch-synchronous grains at the target F0
        if v1 <= v0:
            continue
        t = (a + v0) * hop
        t_end = (a + v1) * hop
        while t < t_end:
            j = min(int(t / hop), len(f0_world) - 1)
            f_tgt = f0_world[j] if f0_world[j] > 0 else DEFAULT_F0
            if marks.size:
                s = source_sample(t)
                m = int(np.clip(np.searchsorted(marks, s), 0, len(marks) - 1))
                if m > 0 and abs(marks[m - 1] - s) < abs(marks[m] - s):
                    m -= 1
                half = max(int(round(periods[m])), 8)
                length = max(int(round(2 * half / formant)), 16)
                g = _grain(x, marks[m], half, length)
                w = np.interp(np.linspace(0, 2 * half - 1, length), np.arange(2 * half),
                              np.hanning(2 * half + 2)[1:-1])
                _add(out, wsum, g, w, t)
            t += sr / f_tgt
    width = max(int(WSUM_SMOOTH_S * sr), 1)
    smooth = np.convolve(wsum, np.ones(width) / width, mode="same")
    return out / np.maximum(smooth, WSUM_FLOOR)
