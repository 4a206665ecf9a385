"""Inaudible, robust audio watermark: keyed spread-spectrum patchwork in STFT tiles.

Written from the published descriptions of spread-spectrum and patchwork audio watermarking
(Bender et al., "Techniques for data hiding", IBM Syst. J. 35, 1996 — patchwork; Kirovski &
Malvar, "Spread-spectrum watermarking of audio signals", IEEE Trans. Signal Process. 51(4),
2003 — chips over time-frequency tiles, block synchronisation by search; Malvar & Florêncio,
"Improved spread spectrum", IEEE Trans. Signal Process. 51(4), 2003 — host-interference
cancellation).  No code of an existing watermarking tool was read or used.

* **Grid.**  Everything is analysed at :data:`WM_SR` = 16 kHz (mono downmix), so resampling
  anywhere in 16–48 kHz keeps the whole marked band.  An STFT (Hann, :data:`N_FFT` = 1024,
  hop :data:`HOP` = 256) is cut into *tiles* of :data:`TILE_HOPS` frames (48 ms) ×
  :data:`ROW_BINS` bins (250 Hz) over :data:`BAND_LO_HZ`–:data:`BAND_HI_HZ` (24 rows).
  :data:`BLOCK_COLS` tile columns (5.14 s) make a *block*, repeated over the whole file.
* **Keyed pattern.**  The key (public by default: the mark discloses, it is not DRM) seeds,
  for every tile of the block, a balanced ±1 sign for each of its 8 two-bin groups
  (patchwork sets A/B) and which block bit the tile carries (a permutation, so every bit is
  spread over time and frequency).
* **Statistic.**  A group's value is its log-energy contrast against the same bins one
  tile earlier and later, centred over the tile and clipped to ±:data:`LR_CLIP`; a tile's
  statistic is ``Σ_g pn_g · u_g / groups``.  A sustained note's harmonics and formants
  cancel in the contrast (an energy *balance* inside a tile is dominated by where the
  harmonics fall — the host interference that sank sparse vocals under added noise); gain,
  loudness and resampling cancel too; ~0 on unmarked audio.
* **Embedding** is multiplicative: group g of a tile carrying bit b is scaled by
  ``1 + a·pn_g·(2b-1)``, so the mark is proportional to the signal (none in silence; samples
  of digital silence are additionally gated to stay bit-exact).  The depth ``a`` per frame
  and row is a simple masking estimate: the frame's mark power stays :data:`TARGET_SNR_DB`
  below its power, shared so that quieter rows get deeper marks (:data:`DEPTH_TILT`), never
  deeper than :data:`A_TILE_MAX`.  *Informed embedding* then adapts the depth of every bit
  instance over :data:`ISS_ITERATIONS` passes until the detector's statistic reaches
  :data:`ISS_TARGET` despite the host signal, within the same power budget.
* **Code.**  32 payload bits (16-bit voice-model hash + 16-bit content ID) + CRC-16/CCITT
  go through the terminated rate-1/2, K=7 convolutional code (generators 171/133 octal),
  giving 108 coded bits; 40 *sync* bits (all ones) locate the block.
* **Detection.**  Tile statistics (weighted by their reliability: energy above the row's
  noise floor over the square root of their null variance) are folded modulo the block and
  correlated with the pattern for all 3 frame phases × 107 block offsets, so any crop
  works.  The best sync correlation is a z-score (≈ N(0, 1) per candidate on unmarked
  audio); the coded bits there are soft-Viterbi decoded and the CRC checked (if it fails,
  the next best candidates, up to :data:`DECODE_CANDIDATES` with ``z >= Z_PAYLOAD``, are
  decoded too).  A mark is reported when the CRC holds and ``z >= Z_PAYLOAD``, or —
  payload unreadable — when ``z >= Z_MARK_ONLY``.  Thresholds and
  robustness are measured by ``bench/watermark.py`` (see ``docs/labelling.md``).
* **Version 3** (what :func:`embed` writes) keeps all of the above but lays the bin groups
  out on a log-frequency scale (``V3_*``: ``max(2 bins, 2 %)`` wide, 12 rows × 8 groups,
  750–6125 Hz, 108-column blocks), so that a speed change (time and frequency scaled), a
  tempo change (time) or a pitch shift (frequency) only needs the tile edges moved: the
  detector searches (time scale, pitch scale) hypotheses on the running sums of one
  spectrogram (:func:`scale_hypotheses`, :class:`_Searcher`), with thresholds
  :data:`Z3_PAYLOAD` / :data:`Z3_MARK_ONLY` corrected for the number of candidates.  v2
  marks are still read (v2 detector, when no v3 mark is found).  Since issue 17's second
  round the v3 detector weights tiles by their predicted depth (:func:`_v3_weights`) and
  list-decodes the payload (:func:`viterbi_list`, :data:`DECODE_LIST` paths); the embedder
  (all versions) uses a steeper depth tilt and scales the whole file's mark to
  :data:`FILE_SNR_DB`.  The grid and code are unchanged, so these are still v3 marks.
  Third round (detector only): a lower noise floor (:data:`V3_NOISE_FLOOR_PCT`) and a wider
  contrast clip (:data:`V3_LR_CLIP`) in the v3 weights, and the best sync candidates ranked
  by their 148-bit score (:func:`_total_score`, :data:`DECODE_POOL`) before the CRC is
  checked on :data:`DECODE_CANDIDATES` of them — marks mixed under speech or another song.

Arrays: ``audio`` is ``(samples,)`` or ``(channels, samples)`` float at ``sr`` Hz.
"""

from __future__ import annotations

import binascii
import hashlib
import math
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from aisinger.io.audio import resample, to_mono
from aisinger.errors import AisingerError

WM_SR = 16_000
"""Internal analysis rate (Hz): the lowest rate the mark must survive."""
N_FFT = 1024
"""STFT frame length at WM_SR (64 ms)."""
HOP = 256
"""STFT hop at WM_SR (16 ms)."""
TILE_HOPS = 3
"""Frames per tile column (3 × 16 ms = 48 ms; v1 used 128 ms).  Short tiles keep a sung
note's spectrum nearly the same in the neighbouring tiles the statistic compares against."""
BAND_LO_HZ = 750.0
"""Lowest marked frequency (Hz): above most of a voice's fundamental energy."""
BAND_HI_HZ = 6750.0
"""Highest marked frequency (Hz): inside the pass band of a 16 kHz resampler."""
ROW_BINS = 16
"""STFT bins per tile row (16 × 15.625 Hz = 250 Hz)."""
GROUP_BINS = 2
"""Bins per sign group inside a tile (8 groups per tile, half of them +1)."""
BLOCK_COLS = 107
"""Tile columns per block (107 × 48 ms = 5.14 s); the block repeats."""
WATERMARK_VERSION = 3
"""Version of the mark :func:`embed` writes.  3: log-frequency bin groups (``V3_*``) found by
a speed / tempo / pitch search; 2: 250 Hz rows of 2-bin groups, no search (still detected);
1: 128 ms tiles, energy balance (not read).  Payload, code and key are the same in all."""
PAYLOAD_BITS = 32
"""Payload: 16-bit voice-model hash + 16-bit content ID."""
VOICE_BITS = 16
"""Bits of the payload holding the voice-model hash."""
CONTENT_BITS = PAYLOAD_BITS - VOICE_BITS
"""Bits of the payload holding the content ID."""
CRC_BITS = 16
"""CRC-16/CCITT over the payload."""
CONV_K = 7
"""Constraint length of the convolutional code."""
CONV_POLYS = (0o171, 0o133)
"""Generator polynomials (octal) of the rate-1/2 K=7 code."""
SYNC_BITS = 40
"""Known bits used to find the block position and to score detection."""
TARGET_SNR_DB = 23.0
"""Per-frame signal-to-watermark power ratio aimed at (frames below the cap and the silence
gate make the whole file's SNR ~2 dB higher: ≥ 25 dB)."""
A_SMOOTH_FRAMES = 5
"""Moving-average length (frames) of the depth ``a`` over time."""
SILENCE_LEVEL = 2.0 ** -16
"""Samples whose neighbourhood peak stays below this (half a 16-bit LSB) are silence."""
SILENCE_GUARD_S = 0.005
"""Half-width (s) of the neighbourhood used to decide digital silence."""
DEPTH_TILT = 1.5
"""Exponent of the depth's inverse dependence on a row's energy (0: same depth everywhere).
1.5 since issue 17's second round (was 1.0): a-cappella vocals under noise 20 dB / the codec
chain gained ~1 in median sync z at a lower file SNR cost (measured: 0 and 0.5 worse, 2.0
worse; docs/labelling.md)."""
WATERFILL_ITERATIONS = 3
"""Water-filling passes of the depth: rows at the cap free budget for the others."""
A_TILE_MAX = 0.8
"""Largest depth of any tile: groups move by at most +5.1/-14 dB, the mark stays ≥ 2 dB
below the tile it lives in (0.7 until issue 17's second round)."""
FILE_SNR_DB = 25.3
"""Whole-file signal-to-watermark ratio the mark is finally scaled to (down when the
per-frame budget added up to more, up by at most :data:`FILE_SNR_MAX_UP_DB` when it left
room): the 25 dB target holds by construction, with a 0.3 dB margin for clipping and
resampling."""
FILE_SNR_MAX_UP_DB = 1.0
"""Largest increase of the mark by the whole-file scaling (dB): frames stay at least
``TARGET_SNR_DB - FILE_SNR_MAX_UP_DB`` below their own power."""
ISS_ITERATIONS = 2
"""Informed-embedding passes (each: embed, measure the detector statistic, adapt)."""
ISS_TARGET = 0.35
"""Aimed-at mean tile statistic of every bit instance (tile statistic ∈ [-LR_CLIP, LR_CLIP])."""
ISS_STEP_MIN, ISS_STEP_MAX = 0.7, 2.5
"""Bounds of one adaptation step of a bit instance's depth multiplier."""
BOOST_MIN, BOOST_MAX = 0.5, 8.0
"""Bounds of a tile's depth multiplier."""
EMPTY_TILE_REL = 1e-9
"""Tiles with less energy than this × the loudest tile count as empty (no information)."""
LR_CLIP = 1.0
"""Clip (natural-log units, ±8.7 dB) of a group's log-energy contrast in the tile statistic."""
VAR_FLOOR = 1e-3
"""Lower bound of a tile's variance in the detector weights (avoids dividing by ~0)."""
WEIGHT_CAP = 20.0
"""Largest tile weight as a multiple of the median weight (no tile may dominate)."""
NOISE_FLOOR_PCT = 10.0
"""Percentile of a row's tile energies taken as its noise floor (detector weighting)."""
MIN_DETECT_S = 1.0
"""Shorter inputs are not searched (seconds)."""
Z_PAYLOAD = 5.0
"""Sync z-score needed (together with a valid CRC) to report a mark with its payload."""
DECODE_CANDIDATES = 4
"""Sync candidates (best first, each with ``z >= Z_PAYLOAD``) whose payload is decoded until
one passes its CRC."""
Z_MARK_ONLY = 6.5
"""Sync z-score that reports a mark even when the payload cannot be read."""
WINDOW_S = 20.0
"""Long inputs are searched in windows of this many seconds (hop WINDOW_S / 2)."""
DEFAULT_KEY = "aisinger-watermark-v1"
"""Public default key: anyone can check an aisinger output for the mark."""

_N_INFO = PAYLOAD_BITS + CRC_BITS
_N_CODED = len(CONV_POLYS) * (_N_INFO + CONV_K - 1)
_N_BITS = SYNC_BITS + _N_CODED
_BIN_LO = int(round(BAND_LO_HZ * N_FFT / WM_SR))
_N_ROWS = int(round((BAND_HI_HZ - BAND_LO_HZ) * N_FFT / WM_SR)) // ROW_BINS
_BIN_HI = _BIN_LO + _N_ROWS * ROW_BINS
_N_GROUPS = ROW_BINS // GROUP_BINS
_PAD_FRAMES = 2
SEGMENT_BLOCKS = 16
"""Long inputs are marked in segments of this many blocks (~82 s) plus context; see
:func:`_marks16`."""
_JOIN = 2 * N_FFT  # crossfade at segment joints (samples at WM_SR)
"""Extra frames before sample 0 so the first samples are fully covered."""

# ---- version 3 grid (log-frequency groups) and its speed / tempo / pitch search
V3_BAND_LO_HZ = 750.0
"""Lowest marked frequency of v3 (Hz)."""
V3_GROUP_REL = 0.02
"""v3 bin groups are ``max(2 bins, 2 % of their frequency)`` wide, so every group spans at
least ~1.6 % in frequency: a frequency-scale error well under that keeps the groups aligned."""
V3_ROWS = 12
"""v3 tile rows (8 groups each; 96 groups from 750 Hz to 6125 Hz)."""
V3_BLOCK_COLS = 108
"""v3 tile columns per block (5.18 s; 108 = 2²·3³ keeps the detector's FFTs over block
offsets fast, where v2's prime 107 would need a slow transform)."""
SPEED_RANGE = (0.8, 1.25)
"""Playback-speed changes (resampled playback: time and pitch scale together) searched."""
TEMPO_RANGE = (0.85, 1.15)
"""Tempo-only changes (time-stretch, pitch kept) searched."""
PITCH_SEMITONES = 2.0
"""Pitch shifts (duration kept) searched, ± semitones."""
SCALE_MARGIN = 0.015
"""Relative margin added at both ends of every searched range."""
TIME_STEP = 0.008
"""Log step of the coarse time-scale hypotheses (a 0.4 % error drifts 20 ms, under half a
tile, over the 5 s from the window's centre, where the tile grid is anchored)."""
FREQ_STEP = 0.009
"""Log step of the coarse pitch hypotheses (a 0.45 % error is under 1/3 of the narrowest
group)."""
REFINE_STEPS = 2
"""Refinement: ±REFINE_STEPS quarter steps in time and pitch around the best hypotheses."""
REFINE_TOP = 2
"""Coarse hypotheses (best sync scores, distinct) that are refined."""
FINE_HOP = 256
"""Hop (samples at WM_SR, 16 ms) of the detector's spectrogram that the hypotheses resample
(linear interpolation of its running sums; 8 ms measured the same z at 1.4× the cost)."""
V3_WINDOW_S = 10.0
"""v3 searches windows of this many seconds (hop half of it); shorter windows drift less."""
V3_MIN_DETECT_S = 3.0
"""Shorter inputs are too short to tell (the mark needs ~3 s to be found with confidence)."""
DECODE_LIST = 8
"""v3: paths of the list Viterbi decoder tried per candidate (first CRC-valid one wins);
each costs a 2⁻¹⁶ chance of a false CRC match, counted in the false-alarm bound."""
V3_REL_DB = 12.0
"""v3 detector: level (dB above its column's mean) at which a tile's depth weight ``h``
reaches 0 before clipping (see :func:`_v3_weights`)."""
V3_REL_CLIP = (0.3, 2.0)
"""v3 detector: bounds of the depth weight ``h``."""
V3_VAR_EXP = 0.25
"""v3 detector: exponent of the tile's null variance in its weight (v2: 0.5)."""
V3_NOISE_FLOOR_PCT = 3.0
"""v3 detector: percentile of a row's tile energies taken as its noise floor in ``rho``
(v2: :data:`NOISE_FLOOR_PCT` = 10).  Since issue 17's third round: under a speech or song
interferer the 10th percentile sits on the interferer's quieter tiles and zeroes tiles the
vocal still holds (z at the true alignment +5–10 % under interferers, ±1 % under noise)."""
V3_LR_CLIP = 1.5
"""v3 detector: clip (natural-log units, ±13 dB) of a group's log-energy contrast (embedder
and v2: :data:`LR_CLIP` = 1).  A deep quiet-row mark moves a group by up to +5.1 / −14 dB,
so the wider clip keeps more of it (third round: +1–3 % z under interferers, ±0.5 % under
noise)."""
DECODE_POOL = 32
"""v3: sync candidates (best first, each with ``z >= Z3_PAYLOAD``) that are soft-decoded and
ranked by their *total* score (sync bits + the decoded path over all coded bits, see
:func:`_total_score`); the CRC is then checked on the :data:`DECODE_CANDIDATES` best of
them.  The 40 sync bits alone pick a neighbouring hypothesis (a quarter step off in time,
another sub-tile phase) about as often as the right one when the mark is weak; the 148-bit
score picks the one whose payload decodes (third round: tempo 0.9 + song −6 dB, vocals
50 → 75 % on the development subset)."""
Z3_PAYLOAD = 5.5
"""v3: sync z-score needed (with a valid CRC) to report a mark; higher than v2's because the
search looks at many more candidates (see :func:`search_candidates`)."""
Z3_MARK_ONLY = 7.5
"""v3: sync z-score that reports a mark whose payload cannot be read."""


@dataclass(frozen=True)
class _Grid:
    """Tile grid of one mark version: bin-group edges (STFT bins at WM_SR / N_FFT), groups per
    row, tile columns per block; ``bin_group`` maps every band bin to its group."""

    version: int
    edges: np.ndarray = field(repr=False)
    groups: int
    block_cols: int
    bin_group: np.ndarray = field(repr=False)

    @property
    def rows(self) -> int:
        return (len(self.edges) - 1) // self.groups

    @property
    def lo(self) -> int:
        return int(self.edges[0])

    @property
    def hi(self) -> int:
        return int(self.edges[-1])


@lru_cache(maxsize=4)
def _grid(version: int) -> _Grid:
    if version == 2:
        edges = _BIN_LO + GROUP_BINS * np.arange(_N_ROWS * _N_GROUPS + 1)
        groups, cols = _N_GROUPS, BLOCK_COLS
    elif version == 3:
        e = [int(round(V3_BAND_LO_HZ * N_FFT / WM_SR))]
        while len(e) < V3_ROWS * 8 + 1:
            e.append(e[-1] + max(2, int(round(V3_GROUP_REL * e[-1]))))
        edges, groups, cols = np.asarray(e), 8, V3_BLOCK_COLS
    else:
        raise AisingerError(f"unknown watermark version {version}")
    bin_group = np.repeat(np.arange(len(edges) - 1), np.diff(edges))
    return _Grid(version, edges, groups, cols, bin_group)


# ----------------------------------------------------------------------------------------------
# payload helpers


def voice_hash(voice_id: str) -> int:
    """:data:`VOICE_BITS`-bit hash of a voice-model ID (leading bits of its SHA-256)."""
    digest = int.from_bytes(hashlib.sha256(voice_id.encode("utf-8")).digest()[:8], "big")
    return digest >> (64 - VOICE_BITS)


def payload_for(voice_id: str | None, content_id: int) -> bytes:
    """The 4-byte payload: 16-bit voice-model hash + 16-bit content ID.

    ``voice_id=None`` (no voice model, e.g. a plain label) gives voice hash 0.
    """
    if not 0 <= int(content_id) < 2 ** CONTENT_BITS:
        raise AisingerError(f"content ID {content_id} is outside 0..{2 ** CONTENT_BITS - 1}")
    vh = voice_hash(voice_id) if voice_id else 0
    return ((vh << CONTENT_BITS) | int(content_id)).to_bytes(PAYLOAD_BITS // 8, "big")


def split_payload(payload: bytes) -> tuple[int, int]:
    """``(voice_hash, content_id)`` of a 4-byte payload."""
    value = int.from_bytes(payload, "big")
    return value >> CONTENT_BITS, value & (2 ** CONTENT_BITS - 1)


def _payload_bytes(payload: bytes | int) -> bytes:
    n = PAYLOAD_BITS // 8
    if isinstance(payload, (bytes, bytearray)):
        if len(payload) > n:
            raise AisingerError(f"watermark payload of {len(payload)} bytes; at most {n} fit")
        return bytes(payload).rjust(n, b"\0")
    value = int(payload)
    if not 0 <= value < 2 ** PAYLOAD_BITS:
        raise AisingerError(f"watermark payload {value} does not fit in {PAYLOAD_BITS} bits")
    return value.to_bytes(n, "big")


def _bits(data: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8)).astype(np.int8)


def _crc16(data: bytes) -> int:
    return binascii.crc_hqx(data, 0xFFFF)


# ----------------------------------------------------------------------------------------------
# convolutional code


@lru_cache(maxsize=1)
def _trellis() -> tuple[np.ndarray, np.ndarray]:
    """``next_state[s, b]`` and ``outputs[s, b, j]`` of the K=7 encoder (state = last 6 bits)."""
    n_states = 1 << (CONV_K - 1)
    nxt = np.zeros((n_states, 2), dtype=np.int64)
    out = np.zeros((n_states, 2, len(CONV_POLYS)), dtype=np.int8)
    for s in range(n_states):
        for b in (0, 1):
            reg = (b << (CONV_K - 1)) | s
            nxt[s, b] = reg >> 1
            for j, poly in enumerate(CONV_POLYS):
                out[s, b, j] = bin(reg & poly).count("1") & 1
    return nxt, out


def conv_encode(bits: np.ndarray) -> np.ndarray:
    """Terminated rate-1/2 convolutional encoding: ``(n,)`` bits → ``(2·(n+6),)`` bits."""
    nxt, out = _trellis()
    s, coded = 0, []
    for b in np.concatenate([bits, np.zeros(CONV_K - 1, dtype=np.int8)]):
        coded.append(out[s, int(b)])
        s = nxt[s, int(b)]
    return np.concatenate(coded).astype(np.int8)


@lru_cache(maxsize=1)
def _edges() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Output signs ``(S, 2, n_out)`` (±1) of every (state, input bit), and the two edges
    (source state ``(S, 2)``, input bit ``(S, 2)``) into every destination state."""
    nxt, out = _trellis()
    n_states = nxt.shape[0]
    src = np.repeat(np.arange(n_states), 2)
    bit = np.tile([0, 1], n_states)
    order = np.argsort(nxt.reshape(-1), kind="stable")
    return (2.0 * out - 1.0, src[order].reshape(n_states, 2), bit[order].reshape(n_states, 2))


def viterbi_decode(soft: np.ndarray) -> np.ndarray:
    """Soft-decision Viterbi for :func:`conv_encode` (terminated in state 0).

    Args:
        soft: ``(2·(n+6),)`` soft values, positive meaning bit 1 (0 = erased).
    Returns:
        ``(n,)`` decoded bits.
    """
    sign, e_src, e_bit = _edges()
    n_states = len(e_src)
    steps = np.asarray(soft, dtype=np.float64).reshape(-1, len(CONV_POLYS))
    rows = np.arange(n_states)
    metric = np.full(n_states, -np.inf)
    metric[0] = 0.0
    back = np.zeros((len(steps), n_states), dtype=np.int8)
    for t, y in enumerate(steps):
        branch = sign @ y  # (S, 2) correlation of each edge's output with the soft values
        cand = metric[e_src] + branch[e_src, e_bit]
        pick = np.argmax(cand, axis=1)
        metric = cand[rows, pick]
        back[t] = pick
    s = 0  # terminated code: the path ends in state 0
    bits = np.zeros(len(steps), dtype=np.int8)
    for t in range(len(steps) - 1, -1, -1):
        p = back[t, s]
        bits[t] = e_bit[s, p]
        s = e_src[s, p]
    return bits[: len(steps) - (CONV_K - 1)]


def viterbi_list(soft: np.ndarray, size: int) -> list[np.ndarray]:
    """List Viterbi (parallel): the ``size`` most likely inputs for :func:`conv_encode`,
    best first (distinct paths ending in state 0; fewer when the trellis has fewer).

    Every state keeps its ``size`` best partial paths; the CRC then picks the first list
    entry that passes, which recovers payloads whose best path is wrong in a bit or two.
    ``size=1`` gives :func:`viterbi_decode`'s path.
    """
    sign, e_src, e_bit = _edges()
    n_states = len(e_src)
    steps = np.asarray(soft, dtype=np.float64).reshape(-1, len(CONV_POLYS))
    metric = np.full((n_states, size), -np.inf)
    metric[0, 0] = 0.0
    back = np.zeros((len(steps), n_states, size), dtype=np.int32)
    rows = np.arange(n_states)[:, None]
    for t, y in enumerate(steps):
        branch = sign @ y  # (S, 2)
        cand = (metric[e_src] + branch[e_src, e_bit][:, :, None]).reshape(n_states, 2 * size)
        pick = np.argsort(-cand, axis=1, kind="stable")[:, :size]  # edge·size + rank
        metric = cand[rows, pick]
        back[t] = pick
    paths = []
    for rank in range(size):
        if not np.isfinite(metric[0, rank]):
            break
        s, r = 0, rank
        bits = np.zeros(len(steps), dtype=np.int8)
        for t in range(len(steps) - 1, -1, -1):
            e, r = divmod(int(back[t, s, r]), size)
            bits[t] = e_bit[s, e]
            s = e_src[s, e]
        paths.append(bits[: len(steps) - (CONV_K - 1)])
    return paths


# ----------------------------------------------------------------------------------------------
# keyed layout


@dataclass(frozen=True)
class _Layout:
    """The keyed pattern of one block.

    ``pn[p, r, g]``: ±1 sign of bin group ``g`` in tile ``(p, r)``, balanced (half +1) per tile;
    ``bit_of_tile[p, r]``: which block bit the tile carries (the first SYNC_BITS are sync);
    ``order`` / ``starts``: tiles sorted by bit and where each bit's run begins.
    """

    pn: np.ndarray
    bit_of_tile: np.ndarray
    order: np.ndarray = field(repr=False)
    starts: np.ndarray = field(repr=False)


@lru_cache(maxsize=8)
def _layout(key: str, version: int = 2) -> _Layout:
    """The keyed block pattern of grid ``version`` (v2 and v3 use different seeds)."""
    g = _grid(version)
    tag = "aisinger-wm|" if version == 2 else f"aisinger-wm{version}|"
    seed = int.from_bytes(hashlib.sha256((tag + key).encode("utf-8")).digest()[:8], "big")
    rng = np.random.default_rng(seed)
    n_tiles = g.block_cols * g.rows
    half = np.repeat([1.0, -1.0], g.groups // 2)
    pn = np.stack([rng.permutation(half) for _ in range(n_tiles)])
    pn = pn.reshape(g.block_cols, g.rows, g.groups)
    bit_of_tile = (rng.permutation(n_tiles) % _N_BITS).reshape(g.block_cols, g.rows)
    order = np.argsort(bit_of_tile.reshape(-1), kind="stable")
    starts = np.searchsorted(bit_of_tile.reshape(-1)[order], np.arange(_N_BITS))
    return _Layout(pn, bit_of_tile, order, starts)


def _codeword(payload: bytes) -> np.ndarray:
    """All block bits (sync ones + coded payload with CRC), ``(N_BITS,)`` in {0, 1}."""
    info = np.concatenate([_bits(payload), _bits(_crc16(payload).to_bytes(2, "big"))])
    return np.concatenate([np.ones(SYNC_BITS, dtype=np.int8), conv_encode(info)])


# ----------------------------------------------------------------------------------------------
# STFT at WM_SR


def _window() -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def _frame_starts(n: int) -> np.ndarray:
    """Start sample of every frame; frame j is centred at ``(j - _PAD_FRAMES + 0.5)·HOP``."""
    n_frames = (n + N_FFT) // HOP + _PAD_FRAMES
    centres = (np.arange(n_frames) - _PAD_FRAMES) * HOP + HOP // 2
    return centres - N_FFT // 2


def _stft(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Complex STFT ``(frames, N_FFT//2+1)`` of ``x`` ``(n,)`` and the frame starts."""
    import scipy.fft
    starts = _frame_starts(len(x))
    pad_l = -starts[0]
    pad_r = max(0, starts[-1] + N_FFT - len(x))
    xp = np.pad(x.astype(np.float32), (pad_l, pad_r))
    frames = np.lib.stride_tricks.sliding_window_view(xp, N_FFT)[starts + pad_l]
    return scipy.fft.rfft(frames * _window(), axis=1), starts


def _istft(spec: np.ndarray, starts: np.ndarray, n: int) -> np.ndarray:
    """Weighted overlap-add inverse of :func:`_stft` (Hann synthesis window)."""
    import scipy.fft
    win = _window()
    frames = scipy.fft.irfft(spec, n=N_FFT, axis=1).astype(np.float32) * win
    pad_l = -starts[0]
    total = starts[-1] + pad_l + N_FFT
    out = np.zeros(total, dtype=np.float32)
    norm = np.zeros(total, dtype=np.float32)
    idx = (starts + pad_l)[:, None] + np.arange(N_FFT)[None, :]
    for k in range(N_FFT // HOP):  # frames k, k+4, ... do not overlap: vectorised add
        sel = slice(k, None, N_FFT // HOP)
        ii = idx[sel].reshape(-1)
        out[ii] += frames[sel].reshape(-1)
        norm[ii] += np.tile(win * win, len(starts[sel]))
    out = out[pad_l: pad_l + n]
    norm = norm[pad_l: pad_l + n]
    return out / np.maximum(norm, 1e-3)


# ----------------------------------------------------------------------------------------------
# features shared by embedder and detector


def _group_power(spec: np.ndarray, version: int = 2) -> np.ndarray:
    """Power of every bin group in the band: ``(frames, rows, groups)``."""
    g = _grid(version)
    power = np.abs(spec[:, g.lo:g.hi]) ** 2
    if version == 2:
        return power.reshape(len(power), _N_ROWS, _N_GROUPS, GROUP_BINS).sum(axis=3)
    gp = np.add.reduceat(power, g.edges[:-1] - g.lo, axis=1)
    return gp.reshape(len(power), g.rows, g.groups)


def _tile_weights(energy: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Detector weight of every tile, ``(K, rows)``.

    ``rho / sqrt(var)``: ``rho`` = share of the tile's energy above its row's noise floor
    (the :data:`NOISE_FLOOR_PCT` percentile of the row's tile energies), i.e. how much of the
    mark can have survived additive noise; ``var`` = the tile statistic's null variance.  A
    full ``1 / var`` (the textbook matched filter) over-penalises marked tiles, whose
    contrast spread includes the mark itself; the square root measured best under added
    noise (bench/watermark.py).  The weight depends on the audio only, never on the key, so
    the null distribution of the score stays N(0, 1).
    """
    if len(energy) < 4:
        return np.ones_like(energy)
    floor = np.percentile(energy, NOISE_FLOOR_PCT, axis=0, keepdims=True)
    rho = np.clip(1.0 - floor / np.maximum(energy, 1e-30), 0.0, 1.0)
    w = rho / np.sqrt(np.maximum(var, VAR_FLOOR))
    return np.minimum(w, WEIGHT_CAP * max(float(np.median(w)), 1e-12))


def _tile_values(group_power: np.ndarray, phase: int, with_energy: bool = False) -> tuple:
    """Tiles starting at frame ``phase``: each group's clipped log-energy contrast.

    ``u_g = clip(log E_g - ½(log E_g[prev tile] + log E_g[next tile]) - mean, ±LR_CLIP)``
    (centred over the tile's groups): the group's energy relative to the same bins one tile
    earlier and later.  A sustained note's spectral shape (harmonics, formants) cancels, so
    the host interferes far less than with a within-tile energy balance; gain and loudness
    cancel too, and the clip bounds onsets and transients.  The tile statistic is
    ``Σ_g pn_g·dev_g`` with ``dev = u / groups``.

    Returns:
        ``dev`` ``(K, rows, groups)`` (0 for empty tiles), ``var`` ``(K, rows)``: the variance
        of ``Σ_g pn_g·dev_g`` over balanced random signs (its null variance, key-independent),
        and with ``with_energy`` the tile energies ``(K, rows)``.
    """
    n_cols = max(0, (len(group_power) - phase) // TILE_HOPS)
    tiles = group_power[phase: phase + n_cols * TILE_HOPS]
    tiles = tiles.reshape(n_cols, TILE_HOPS, *group_power.shape[1:]).sum(axis=1)
    return _tile_stats(tiles, with_energy)


def _tile_stats(tiles: np.ndarray, with_energy: bool = False, clip: float = LR_CLIP) -> tuple:
    """:func:`_tile_values` from tile powers ``(..., K, rows, groups)`` (any leading axes);
    ``clip`` bounds the log-energy contrast (the v3 detector uses :data:`V3_LR_CLIP`)."""
    n_groups = tiles.shape[-1]
    n_cols = tiles.shape[-3]
    total = tiles.sum(axis=-1, keepdims=True)
    floor = EMPTY_TILE_REL * max(float(total.max(initial=0.0)), 1e-30)
    ok = total > floor
    log_e = np.log(np.maximum(tiles, floor / n_groups))
    ref = log_e.copy()
    if n_cols >= 3:
        ref[..., 1:-1, :, :] = 0.5 * (log_e[..., :-2, :, :] + log_e[..., 2:, :, :])
    if n_cols >= 2:
        ref[..., 0, :, :], ref[..., -1, :, :] = log_e[..., 1, :, :], log_e[..., -2, :, :]
    u = log_e - ref
    u = np.clip(u - u.mean(axis=-1, keepdims=True), -clip, clip)
    u = np.where(ok, u - u.mean(axis=-1, keepdims=True), 0.0)
    dev = u / n_groups
    var = (u ** 2).sum(axis=-1) / (n_groups * (n_groups - 1))
    if with_energy:
        return dev, var, total[..., 0]
    return dev, var


# ----------------------------------------------------------------------------------------------
# embedding


def _depth(spec: np.ndarray, version: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Masking estimate: depth per frame and tile row.

    The frame's watermark budget (:data:`TARGET_SNR_DB` below its power) is shared between
    the rows with depth ∝ (row energy / mean row energy) ** -DEPTH_TILT: quieter rows get a
    deeper mark (the detector's statistic is normalised per tile, so a quiet tile is worth
    as much as a loud one at a fraction of the power), never deeper than :data:`A_TILE_MAX`.

    Returns:
        ``a`` ``(frames, rows)`` and ``budget`` ``(frames,)`` (allowed watermark power).
    """
    power = np.abs(spec) ** 2
    total = power.sum(axis=1)
    rows = _group_power(spec, version).sum(axis=2)
    budget = 10.0 ** (-TARGET_SNR_DB / 10.0) * total
    mean = np.maximum(rows.mean(axis=1, keepdims=True), 1e-30)
    shape = (np.maximum(rows, 1e-30) / mean) ** -DEPTH_TILT
    a = np.zeros_like(rows)
    scale = np.zeros(len(rows))
    for _ in range(WATERFILL_ITERATIONS):  # rows at the cap free budget for the others
        free = a >= A_TILE_MAX
        used = (A_TILE_MAX ** 2 * rows * free).sum(axis=1)
        denom = (shape ** 2 * rows * ~free).sum(axis=1)
        scale = np.sqrt(np.maximum(budget - used, 0.0) / np.maximum(denom, 1e-30))
        a = np.minimum(scale[:, None] * shape, A_TILE_MAX)
    a[rows <= 0] = 0.0
    kernel = np.ones(A_SMOOTH_FRAMES) / A_SMOOTH_FRAMES
    a = np.apply_along_axis(lambda c: np.convolve(c, kernel, mode="same"), 0, a)
    return np.minimum(a, A_TILE_MAX), budget


def _silence_mask(x: np.ndarray, sr: int) -> np.ndarray:
    """``(samples,)`` bool: True where ``x`` (``(C, n)``) is digital silence."""
    from scipy.ndimage import maximum_filter1d

    peak = np.abs(x[0])
    for c in range(1, x.shape[0]):  # channel by channel: no (C, n) temporary
        np.maximum(peak, np.abs(x[c]), out=peak)
    size = max(1, int(2 * SILENCE_GUARD_S * sr) + 1)
    return maximum_filter1d(peak, size=size) < SILENCE_LEVEL


def _tile_signs(n_cols: int, payload: bytes, key: str,
                version: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Bit sign ``(n_cols, rows)`` (±1) and bit-instance id ``(n_cols, rows)`` of file columns."""
    lay = _layout(key, version)
    p_cols = _grid(version).block_cols
    code = 2.0 * _codeword(payload) - 1.0
    cols = np.arange(n_cols)
    bits = lay.bit_of_tile[cols % p_cols]  # (n_cols, R)
    instance = (cols // p_cols)[:, None] * _N_BITS + bits
    return code[bits], instance


def watermark_gain(x16: np.ndarray, payload: bytes, key: str = DEFAULT_KEY,
                   version: int = 3) -> np.ndarray:
    """Relative STFT change ``(frames, N_FFT//2+1)`` that marks ``x16`` (``(n,)`` at WM_SR).

    The mark of a channel ``c`` is ``ISTFT(gain · STFT(x_c))``; computing ``gain`` once on the
    mono mix and applying it to every channel makes the downmix's mark exactly the one
    optimised here.  Informed embedding: the depth of every bit instance (its tiles within
    one block) is adapted over :data:`ISS_ITERATIONS` passes so that the detector's
    statistic for it reaches :data:`ISS_TARGET` per tile despite the host signal
    (host-interference cancellation, as in improved spread spectrum), within the per-frame
    power budget.
    """
    lay, g = _layout(key, version), _grid(version)
    spec, starts = _stft(x16)
    n_frames = len(spec)
    a0, budget = _depth(spec, version)
    cols = (np.arange(n_frames) - _PAD_FRAMES) // TILE_HOPS  # -1 for the padding frames
    n_cols = int(cols.max()) + 2
    signs, instance = _tile_signs(n_cols, payload, key, version)  # column c+1 ↔ index c+1
    signs = np.roll(signs, 1, axis=0)  # index 0 = column -1 (periodic pattern)
    signs[0] = (2.0 * _codeword(payload) - 1.0)[lay.bit_of_tile[g.block_cols - 1]]
    pn_cols = lay.pn[cols % g.block_cols]  # (frames, R, G)
    boost = np.ones((n_cols, g.rows))  # per tile depth multiplier (index = column + 1)
    band_power = np.abs(spec[:, g.lo:g.hi]) ** 2
    n_whole = (n_frames - _PAD_FRAMES) // TILE_HOPS
    for it in range(ISS_ITERATIONS + 1):
        tile_a = np.minimum(a0 * boost[cols + 1], A_TILE_MAX)  # (frames, R)
        chip = (tile_a * signs[cols + 1])[:, :, None] * pn_cols  # (frames, R, G)
        gain = chip.reshape(n_frames, -1)[:, g.bin_group]
        mark_power = (gain ** 2 * band_power).sum(axis=1)
        cap = np.sqrt(np.minimum(1.0, budget / np.maximum(mark_power, 1e-30)))
        gain *= cap[:, None]
        full = np.zeros(spec.shape, dtype=np.float32)
        full[:, g.lo:g.hi] = gain
        if it == ISS_ITERATIONS or n_whole < 1:
            return full
        mark = _istft(spec * full, starts, len(x16))
        dev, _ = _tile_values(_group_power(_stft(x16 + mark)[0], version), _PAD_FRAMES)
        k = dev.shape[0]
        feat = (dev * lay.pn[np.arange(k) % g.block_cols]).sum(axis=2) * signs[1:k + 1]
        inst = instance[:k].reshape(-1)
        per_inst = np.bincount(inst, feat.reshape(-1), minlength=inst.max() + 1)
        n_inst = np.bincount(inst, minlength=inst.max() + 1)
        mean = per_inst / np.maximum(n_inst, 1)
        factor = np.clip(ISS_TARGET / np.maximum(mean[inst], 1e-3), ISS_STEP_MIN, ISS_STEP_MAX)
        boost[1:k + 1] = np.clip(boost[1:k + 1] * factor.reshape(k, g.rows),
                                 BOOST_MIN, BOOST_MAX)
    return full


def watermark_signal(x16: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """The additive mark ``(n,)`` of one channel ``x16`` (``(n,)`` at WM_SR) for ``gain``.

    Frames where this channel's mark would exceed its own power budget are scaled down (a
    channel may hold relatively more energy where the mono mix is quiet).
    """
    spec, starts = _stft(x16)
    delta = spec * gain
    power = np.abs(spec) ** 2
    budget = 10.0 ** (-TARGET_SNR_DB / 10.0) * power.sum(axis=1)
    mark_power = (np.abs(delta) ** 2).sum(axis=1)
    cap = np.sqrt(np.minimum(1.0, budget / np.maximum(mark_power, 1e-30)))
    return _istft(delta * cap[:, None], starts, len(x16))


def _marks16(x16: np.ndarray, payload: bytes, key: str, version: int = 3) -> np.ndarray:
    """The marks ``(C, n)`` of the channels ``x16`` ``(C, n)`` at WM_SR.

    Inputs longer than ``SEGMENT_BLOCKS + 2`` blocks are marked segment by segment so that
    memory stays bounded (a 20-minute song would otherwise hold several full-length STFTs):
    each segment is ``SEGMENT_BLOCKS`` whole blocks plus one block of context on each side and
    starts on a block boundary, so every tile keeps its column, bit and chip; segments are
    joined with a ``_JOIN``-sample linear crossfade.
    """
    n = x16.shape[1]
    blk = _grid(version).block_cols * TILE_HOPS * HOP
    core = SEGMENT_BLOCKS * blk
    if n <= core + 2 * blk:
        gain = watermark_gain(x16.mean(axis=0), payload, key, version)
        return np.stack([watermark_signal(x16[c], gain) for c in range(x16.shape[0])])
    out = np.zeros_like(x16, dtype=np.float32)
    half = _JOIN // 2
    ramp = ((np.arange(_JOIN) + 0.5) / _JOIN).astype(np.float32)
    for a in range(0, n, core):
        lo, hi = max(0, a - blk), min(n, a + core + blk)
        seg = x16[:, lo:hi]
        gain = watermark_gain(seg.mean(axis=0), payload, key, version)
        keep_lo, keep_hi = (a - half if a > 0 else 0), min(n, a + core + half)
        weight = np.ones(keep_hi - keep_lo, dtype=np.float32)
        if a > 0:
            weight[:_JOIN] = ramp
        if a + core < n:
            weight[-_JOIN:] = ramp[::-1]
        for c in range(x16.shape[0]):
            w = watermark_signal(seg[c], gain)[keep_lo - lo:keep_hi - lo]
            out[c, keep_lo:keep_hi] += w * weight
    return out


def embed(audio: np.ndarray, sr: int, payload: bytes | int, key: str = DEFAULT_KEY,
          version: int = WATERMARK_VERSION) -> np.ndarray:
    """Add the watermark carrying ``payload`` (32 bits) to ``audio``.

    Args:
        audio: ``(samples,)`` or ``(channels, samples)`` float, any rate ≥ 8 kHz.
        sr: sample rate (Hz).
        payload: 4 bytes (see :func:`payload_for`) or an int < 2**32.
        key: pattern key; detection needs the same key.
        version: mark version (3, the default; 2 only to reproduce old marks in tests).
    Returns:
        The marked audio, same shape, float32.  Digital silence stays bit-exact.
    """
    data = _payload_bytes(payload)
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim not in (1, 2) or x.shape[-1] == 0:
        raise AisingerError(f"cannot watermark audio of shape {x.shape}")
    if not np.isfinite(x).all():
        raise AisingerError("cannot watermark audio with NaN/inf samples")
    x2 = x[None, :] if x.ndim == 1 else x
    silent = _silence_mask(x2, sr)
    out = x2.copy()
    marks16 = _marks16(resample(x2, sr, WM_SR), data, key, version)

    def mark(c: int) -> np.ndarray:
        w = resample(marks16[c], WM_SR, sr)
        n = min(len(w), x2.shape[1])
        w = np.pad(w[:n], (0, x2.shape[1] - n))
        w[silent] = 0.0
        return w

    # two passes (the mark's power, then the scaled mark) keep one channel's mark in memory
    p_w = sum(float(np.sum(mark(c).astype(np.float64) ** 2)) for c in range(x2.shape[0]))
    scale = _file_scale(float(np.sum(x2.astype(np.float64) ** 2)), p_w)
    for c in range(x2.shape[0]):
        out[c] += scale * mark(c)
    if np.abs(x2).max() <= 1.0:
        np.clip(out, -1.0, 1.0, out=out)
    return out[0] if x.ndim == 1 else out


def _file_scale(p_x: float, p_w: float) -> float:
    """Factor that brings the whole file's signal-to-watermark ratio (signal energy ``p_x``,
    mark energy ``p_w``) to :data:`FILE_SNR_DB` (never more than :data:`FILE_SNR_MAX_UP_DB`
    up; 1 when there is no mark)."""
    if p_w <= 0.0 or p_x <= 0.0:
        return 1.0
    snr = 10.0 * math.log10(p_x / p_w)
    return float(10.0 ** (min(snr - FILE_SNR_DB, FILE_SNR_MAX_UP_DB) / 20.0))


# ----------------------------------------------------------------------------------------------
# detection


@dataclass(frozen=True)
class WatermarkResult:
    """Outcome of :func:`detect`.

    Attributes:
        present: a mark was found (see the module docstring for the rule).
        payload: the 4 payload bytes when the CRC holds, else ``None``.
        voice_hash / content_id: the payload split (``None`` without payload).
        score: sync z-score (≈ N(0,1) on unmarked audio, per candidate) of the candidate
            whose payload passed its CRC, else the best one.
        confidence: 1 − (Bonferroni-corrected) p-value of the sync score, in [0, 1].
        crc_ok: the decoded payload passed its CRC-16.
        bit_errors: coded bits whose sign disagrees with the re-encoded codeword
            (``None`` without payload); ``coded_bits`` observed coded bits.
        offset_s: position (s, in the analysed audio) where a block starts.
        seconds: length of the analysed audio (s).
        raw_payload: the decoder's best guess even when the CRC fails (diagnostics only:
            never trust it without ``crc_ok``).
    """

    present: bool
    payload: bytes | None
    voice_hash: int | None
    content_id: int | None
    score: float
    confidence: float
    crc_ok: bool
    bit_errors: int | None
    coded_bits: int
    offset_s: float
    seconds: float
    raw_payload: bytes | None = None
    version: int | None = None
    time_scale: float = 1.0
    pitch_scale: float = 1.0
    edit: str = "none"
    reason: str | None = None

    @property
    def speed_factor(self) -> float:
        """Playback-rate/tempo factor of the audio against the original (1.1 = 10 % faster)."""
        return 1.0 / self.time_scale

    @property
    def pitch_semitones(self) -> float:
        return 12.0 * math.log2(self.pitch_scale)

    def to_dict(self) -> dict:
        """JSON-friendly dict (payload as hex; the raw guess is left out)."""
        d = dict(self.__dict__)
        d.pop("raw_payload")
        d["payload"] = self.payload.hex() if self.payload is not None else None
        d["speed_factor"] = round(self.speed_factor, 4)
        d["pitch_semitones"] = round(self.pitch_semitones, 2)
        d["time_scale"], d["pitch_scale"] = round(self.time_scale, 4), round(self.pitch_scale, 4)
        return d


def _per_bit(values: np.ndarray, lay: _Layout) -> np.ndarray:
    """Sum ``(n, P·R)`` tile values into ``(n, N_BITS)`` per-bit sums (no BLAS: see below)."""
    # np.add.reduceat over tiles sorted by bit; a one-hot matrix product would do the same
    # but starts BLAS threads, which stall on a busy machine.
    return np.add.reduceat(values[:, lay.order], lay.starts, axis=1)


def _candidates(x16: np.ndarray, key: str) -> tuple[np.ndarray, np.ndarray]:
    """Soft bit sums and their variances for every (frame phase, block offset).

    Returns ``soft`` and ``var``, both ``(TILE_HOPS, BLOCK_COLS, N_BITS)``.
    """
    lay = _layout(key)
    gp = _group_power(_stft(x16)[0])
    shift = (np.arange(BLOCK_COLS)[None, :] - np.arange(BLOCK_COLS)[:, None]) % BLOCK_COLS
    soft = np.zeros((TILE_HOPS, BLOCK_COLS, _N_BITS))
    var = np.zeros_like(soft)
    for phase in range(TILE_HOPS):
        dev, v, energy = _tile_values(gp, phase, with_energy=True)
        w = _tile_weights(energy, v)
        q = np.arange(len(dev)) % BLOCK_COLS
        folded = np.zeros((BLOCK_COLS, _N_ROWS, _N_GROUPS))
        fv = np.zeros((BLOCK_COLS, _N_ROWS))
        np.add.at(folded, q, dev * w[:, :, None])
        np.add.at(fv, q, v * w * w)
        # offset o: block column p was observed at folded column (p - o) mod P
        feat = (folded[shift] * lay.pn[None]).sum(axis=3)  # (offsets, P, R)
        soft[phase] = _per_bit(feat.reshape(BLOCK_COLS, -1), lay)
        var[phase] = _per_bit(fv[shift].reshape(BLOCK_COLS, -1), lay)
    return soft, var


def _norm_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _decode_at(soft: np.ndarray, var: np.ndarray, list_size: int = 1) -> tuple:
    """Soft-Viterbi decode one candidate's coded bits: ``(info, payload, crc_ok, coded,
    observed)``; with ``list_size > 1`` the first of the list decoder's paths whose CRC
    holds (else the best path)."""
    coded_var = var[SYNC_BITS:]
    observed = coded_var > 0
    coded = np.where(observed, soft[SYNC_BITS:] / np.sqrt(np.maximum(coded_var, 1e-12)), 0.0)
    paths = [viterbi_decode(coded)] if list_size <= 1 else viterbi_list(coded, list_size)
    first = None
    for info in paths:
        payload = np.packbits(info[:PAYLOAD_BITS].astype(np.uint8)).tobytes()
        crc = int.from_bytes(np.packbits(info[PAYLOAD_BITS:].astype(np.uint8)).tobytes(), "big")
        res = (info, payload, crc == _crc16(payload), coded, observed)
        if res[2]:
            return res
        first = first or res
    return first


def _decide(decoded: tuple, score: float, z_payload: float,
            z_mark_only: float) -> tuple[bool, bool, int | None]:
    """``(present, payload good, coded bit errors)`` of a decoded candidate with sync
    z-score ``score``: present when the CRC holds at ``z_payload`` or, payload unreadable,
    at ``z_mark_only``."""
    info, _payload, crc_ok, coded, observed = decoded
    present = (crc_ok and score >= z_payload) or score >= z_mark_only
    good = crc_ok and present
    bit_errors = None
    if good:
        recoded = conv_encode(info) * 2 - 1
        bit_errors = int(((np.sign(coded) != recoded) & observed).sum())
    return bool(present), bool(good), bit_errors


def _detect16(x16: np.ndarray, key: str, time_origin: float = 0.0) -> WatermarkResult:
    seconds = len(x16) / WM_SR
    empty = WatermarkResult(False, None, None, None, 0.0, 0.0, False, None, 0, 0.0, seconds)
    if len(x16) < MIN_DETECT_S * WM_SR:
        return empty
    soft, var = _candidates(x16, key)
    sync_var = var[..., :SYNC_BITS].sum(axis=2)
    if sync_var.max() <= 0:
        return empty
    z = soft[..., :SYNC_BITS].sum(axis=2) / np.sqrt(np.maximum(sync_var, 1e-12))
    z[sync_var <= 0] = 0.0
    best = float(z.max())
    confidence = max(0.0, 1.0 - min(1.0, z.size * _norm_sf(best)))
    ranked = [np.unravel_index(int(i), z.shape)
              for i in np.argsort(z, axis=None)[::-1][:max(1, DECODE_CANDIDATES)]]
    phase, offset = ranked[0]
    info, payload, crc_ok, coded, observed = _decode_at(soft[phase, offset], var[phase, offset])
    for cand in ranked[1:]:
        if crc_ok or z[cand] < Z_PAYLOAD:
            break
        c_info, c_payload, c_ok, c_coded, c_obs = _decode_at(soft[cand], var[cand])
        if c_ok:
            phase, offset = cand
            info, payload, crc_ok, coded, observed = c_info, c_payload, c_ok, c_coded, c_obs
    score = float(z[phase, offset])
    present, good, bit_errors = _decide((info, payload, crc_ok, coded, observed), score,
                                        Z_PAYLOAD, Z_MARK_ONLY)
    # block column 0 sits at folded column (-offset mod P), tiles start at frame `phase`
    first_col = (-offset) % BLOCK_COLS
    offset_s = time_origin + ((phase - _PAD_FRAMES + first_col * TILE_HOPS) * HOP) / WM_SR
    vh, cid = split_payload(payload) if good else (None, None)
    return WatermarkResult(bool(present), payload if good else None, vh, cid, score, confidence,
                           bool(crc_ok), bit_errors, int(observed.sum()), float(offset_s),
                           seconds, payload, version=2 if present else None)


# ----------------------------------------------------------------------------------------------
# version 3 detection: search over speed / tempo / pitch hypotheses


@lru_cache(maxsize=2)
def scale_hypotheses() -> tuple[np.ndarray, tuple[str, ...]]:
    """The coarse hypotheses ``(H, 2)`` of ``(time_scale, pitch_scale)`` and their kinds.

    ``time_scale`` = duration of the analysed audio / original duration; ``pitch_scale`` =
    frequency in the analysed audio / original frequency.  Three lines: speed changes (time
    ``1/s``, pitch ``s``), tempo-only changes (time ``1/t``, pitch 1) and pitch-only shifts
    (time 1, pitch ``p``), each a log-spaced grid through 1 (the unedited mark).
    """
    def grid(lo: float, hi: float, step: float) -> np.ndarray:
        a, b = math.log(lo) - SCALE_MARGIN, math.log(hi) + SCALE_MARGIN
        k = np.arange(math.floor(a / step), math.ceil(b / step) + 1)
        return np.exp(k * step)

    speed = grid(*SPEED_RANGE, TIME_STEP)
    tempo = grid(*TEMPO_RANGE, TIME_STEP)
    p = 2.0 ** (PITCH_SEMITONES / 12.0)
    pitch = grid(1.0 / p, p, FREQ_STEP)
    hyps = [(1.0, 1.0)] + [(1 / s, s) for s in speed if abs(math.log(s)) > 1e-9]
    kinds = ["none"] + ["speed"] * (len(hyps) - 1)
    hyps += [(1 / t, 1.0) for t in tempo if abs(math.log(t)) > 1e-9]
    kinds += ["tempo"] * (len(hyps) - len(kinds))
    hyps += [(1.0, f) for f in pitch if abs(math.log(f)) > 1e-9]
    kinds += ["pitch"] * (len(hyps) - len(kinds))
    return np.asarray(hyps), tuple(kinds)


def search_candidates() -> int:
    """Number of sync candidates the v3 search can look at per window (for the false-alarm
    bound): every coarse hypothesis may be refined on a (2·REFINE_STEPS+1)² quarter-step
    grid, × TILE_HOPS phases × block offsets."""
    n = len(scale_hypotheses()[0]) * (2 * REFINE_STEPS + 1) ** 2
    return n * TILE_HOPS * V3_BLOCK_COLS


@lru_cache(maxsize=8)
def _sync_ffts(key: str) -> tuple[np.ndarray, np.ndarray]:
    """FFTs over block columns of the sync pattern ``pn·[sync]`` and of the sync mask."""
    import scipy.fft
    lay = _layout(key, 3)
    sync = (lay.bit_of_tile < SYNC_BITS).astype(np.float64)  # (P, R)
    return (scipy.fft.rfft(lay.pn * sync[:, :, None], axis=0), scipy.fft.rfft(sync, axis=0))


def _fine_power(x16: np.ndarray) -> np.ndarray:
    """Power spectrogram ``(F, N_FFT//2+1)`` with frame ``j`` centred at sample ``j·FINE_HOP``."""
    import scipy.fft
    n_frames = len(x16) // FINE_HOP + 1
    xp = np.pad(x16.astype(np.float32), (N_FFT // 2, N_FFT // 2 + FINE_HOP))
    frames = np.lib.stride_tricks.sliding_window_view(xp, N_FFT)[::FINE_HOP][:n_frames]
    spec = scipy.fft.rfft(frames * _window(), axis=1)
    return (spec.real.astype(np.float64) ** 2 + spec.imag.astype(np.float64) ** 2)


def _interp_rows(cum: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``cum`` along axis 0 at fractional indices ``pos`` (any shape)."""
    pos = np.clip(pos, 0.0, len(cum) - 1.0)
    i0 = np.minimum(pos.astype(np.int64), len(cum) - 2)
    f = (pos - i0)[..., None]
    return cum[i0] * (1.0 - f) + cum[i0 + 1] * f


def _v3_weights(energy: np.ndarray, var: np.ndarray) -> np.ndarray:
    """v3 detector weight of every tile (``energy``, ``var``: ``(..., K, rows)``), before the
    cap: ``rho · h / var**V3_VAR_EXP``.

    ``rho`` is the share of the tile's energy above its row's noise floor (the
    :data:`V3_NOISE_FLOOR_PCT` percentile of the row's tile energies; v2 uses the 10th, which
    under a speech / song interferer zeroes tiles the vocal still holds).  ``h`` =
    ``clip(1 − L / V3_REL_DB, V3_REL_CLIP)``, with ``L`` the tile's level in dB against the
    mean of its column's rows, predicts the mark's depth from the audio alone: the embedder
    marks a row deeper the quieter it is within its frame (:func:`_depth`), so a tile that
    dominates its column carries a shallow mark (measured: mean tile statistic 0.09 at
    +8 dB vs 0.23 at −12 dB on clean a-cappella vocals).  ``var`` only enters weakly
    (exponent :data:`V3_VAR_EXP`): a speech or song interferer raises the spread of exactly
    the tiles it owns, but so does the mark.  Audio only, never the key, so the score's null
    distribution stays N(0, 1)."""
    floor = np.percentile(energy, V3_NOISE_FLOOR_PCT, axis=-2, keepdims=True)
    rho = np.clip(1.0 - floor / np.maximum(energy, 1e-30), 0.0, 1.0)
    level = 10.0 * np.log10(np.maximum(energy, 1e-30) /
                            np.maximum(energy.mean(axis=-1, keepdims=True), 1e-30))
    h = np.clip(1.0 - level / V3_REL_DB, *V3_REL_CLIP)
    return rho * h / np.maximum(var, VAR_FLOOR) ** V3_VAR_EXP


class _Searcher:
    """The v3 detector's view of one window: group powers under any (time, pitch) scale."""

    def __init__(self, x16: np.ndarray, key: str):
        self.g, self.lay, self.key = _grid(3), _layout(key, 3), key
        self.n = len(x16)
        power = _fine_power(x16)
        # cumulative over bins, bins first so that gathering edges copies whole rows
        self.cf = np.concatenate([np.zeros((1, len(power))), np.cumsum(power.T, axis=0)])
        self._ct: dict[float, np.ndarray] = {}
        self._folded: dict[tuple[float, float], tuple] = {}

    def _cum_time(self, pitch: float) -> np.ndarray:
        """Cumulative (over frames) group powers ``(F+1, groups)`` for a pitch scale."""
        ct = self._ct.get(pitch)
        if ct is None:
            # group [e_lo, e_hi) covers bin coordinates [e - 1/2) ; cf[k] integrates to k - 1/2
            pos = (self.g.edges - 0.5) * pitch + 0.5
            gp = np.diff(_interp_rows(self.cf, pos), axis=0).T  # (F, groups)
            ct = np.concatenate([np.zeros((1, gp.shape[1])), np.cumsum(gp, axis=0)])
            if len(self._ct) > 64:
                self._ct.clear()
            self._ct[pitch] = ct
        return ct

    def tiles(self, time: float, pitch: float) -> tuple[np.ndarray, np.ndarray]:
        """Tile powers ``(TILE_HOPS, K, rows, groups)`` for the three sub-tile phases, and the
        start sample of every tile ``(TILE_HOPS, K)``; the tile grid is centred on the window
        so that a time-scale error drifts least."""
        tile = TILE_HOPS * HOP * time  # samples of one tile in the analysed audio
        k = max(1, int((self.n - tile) // tile))
        start = 0.5 * (self.n - (k + 1) * tile)
        bounds = start + tile * (np.arange(TILE_HOPS)[:, None] / TILE_HOPS +
                                 np.arange(k + 1)[None, :])  # (phases, K+1) samples
        c = _interp_rows(self._cum_time(pitch), bounds / FINE_HOP + 0.5)
        tiles = np.diff(c, axis=1).reshape(TILE_HOPS, k, self.g.rows, self.g.groups)
        return np.maximum(tiles, 0.0).astype(np.float32), bounds[:, :-1]

    def folded(self, time: float, pitch: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Weighted tile values folded modulo the block: ``(phases, P, R, G)``, their
        variances ``(phases, P, R)`` and the tile start samples (the last few hypotheses are
        cached: candidates of one hypothesis share them)."""
        hit = self._folded.get((time, pitch))
        if hit is not None:
            return hit
        tiles, starts = self.tiles(time, pitch)
        dev, var, energy = _tile_stats(tiles, with_energy=True, clip=V3_LR_CLIP)
        if energy.shape[1] >= 4:
            w = _v3_weights(energy, var)
            cap = WEIGHT_CAP * np.maximum(np.median(w, axis=(1, 2), keepdims=True), 1e-12)
            w = np.minimum(w, cap)
        else:
            w = np.ones_like(energy)
        p_cols = self.g.block_cols
        k = dev.shape[1]
        m = -(-k // p_cols)
        pad = ((0, 0), (0, m * p_cols - k), (0, 0))
        fd = np.pad(dev * w[..., None], pad + ((0, 0),))
        fv = np.pad(var * w * w, pad)
        fd = fd.reshape(TILE_HOPS, m, p_cols, *fd.shape[2:]).sum(axis=1)
        fv = fv.reshape(TILE_HOPS, m, p_cols, fv.shape[-1]).sum(axis=1)
        if len(self._folded) >= 8:
            self._folded.clear()
        self._folded[(time, pitch)] = (fd, fv, starts)
        return fd, fv, starts

    def sync_z(self, time: float, pitch: float) -> np.ndarray:
        """Sync z-score ``(phases, offsets)`` of one hypothesis (circular correlation by FFT)."""
        import scipy.fft
        fd, fv, _ = self.folded(time, pitch)
        pat, mask = _sync_ffts(self.key)
        p_cols = self.g.block_cols
        a = scipy.fft.rfft(fd, axis=1)
        score = scipy.fft.irfft((np.conj(a) * pat).sum(axis=(2, 3)), n=p_cols, axis=1)
        b = scipy.fft.rfft(fv, axis=1)
        var = scipy.fft.irfft((np.conj(b) * mask).sum(axis=2), n=p_cols, axis=1)
        ok = var > 1e-9 * max(float(var.max(initial=0.0)), 1e-30)
        return np.where(ok, score / np.sqrt(np.where(ok, var, 1.0)), 0.0)

    def bits_at(self, time: float, pitch: float, phase: int, offset: int) -> tuple:
        """Soft bit sums and variances ``(N_BITS,)`` of one candidate, and its block start
        (sample of the window where block column 0 begins)."""
        fd, fv, starts = self.folded(time, pitch)
        fd_o = np.roll(fd[phase], offset, axis=0)  # block column p ↔ folded (p - o) mod P
        fv_o = np.roll(fv[phase], offset, axis=0)
        feat = (fd_o * self.lay.pn).sum(axis=2)
        soft = _per_bit(feat.reshape(1, -1), self.lay)[0]
        var = _per_bit(fv_o.reshape(1, -1), self.lay)[0]
        first = (-offset) % self.g.block_cols
        block_start = float(starts[phase][first]) if first < starts.shape[1] else 0.0
        return soft, var, block_start


def _total_score(soft: np.ndarray, var: np.ndarray) -> float:
    """z-score of one candidate over *all* its bits: the sync bits plus the coded bits read
    along the best (plain Viterbi) path.  Used only to rank candidates before their CRC is
    checked (the path is chosen to fit, so this is not N(0, 1) on unmarked audio; the
    decision stays on the sync z and the CRC)."""
    coded_var = var[SYNC_BITS:]
    coded = np.where(coded_var > 0, soft[SYNC_BITS:] / np.sqrt(np.maximum(coded_var, 1e-12)),
                     0.0)
    sign = 2.0 * conv_encode(viterbi_decode(coded)) - 1.0
    total = float(soft[:SYNC_BITS].sum() + (sign * soft[SYNC_BITS:]).sum())
    return total / math.sqrt(max(float(var.sum()), 1e-12))


def _edit_name(time: float, pitch: float) -> str:
    lt, lp = math.log(time), math.log(pitch)
    tol = TIME_STEP / 2
    if abs(lt) < tol and abs(lp) < tol:
        return "none"
    if abs(lp) < tol:
        return "tempo"
    if abs(lt) < tol:
        return "pitch"
    if abs(lt + lp) < 2 * tol:
        return "speed"
    return "time+pitch"


def _detect3(x16: np.ndarray, key: str, time_origin: float = 0.0,
             search: bool = True) -> WatermarkResult:
    """Search one window for a v3 mark under every speed / tempo / pitch hypothesis (only
    the unedited one with ``search=False``)."""
    seconds = len(x16) / WM_SR
    empty = WatermarkResult(False, None, None, None, 0.0, 0.0, False, None, 0, 0.0, seconds)
    s = _Searcher(x16, key)
    hyps = scale_hypotheses()[0] if search else np.ones((1, 2))
    zs = np.stack([s.sync_z(t, f) for t, f in hyps])  # (H, phases, offsets)
    if not np.any(zs):
        return empty
    all_h, all_z = hyps, zs
    if search:
        top = np.argsort(zs.reshape(len(zs), -1).max(axis=1))[::-1][:REFINE_TOP]
        quarter = np.arange(-REFINE_STEPS, REFINE_STEPS + 1) / 4.0
        refined = [(hyps[h][0] * math.exp(a * TIME_STEP), hyps[h][1] * math.exp(b * FREQ_STEP))
                   for h in top for a in quarter for b in quarter if a or b]
        zr = np.stack([s.sync_z(t, f) for t, f in refined])
        all_h = np.concatenate([hyps, np.asarray(refined)])
        all_z = np.concatenate([zs, zr])
    order = np.argsort(all_z, axis=None)[::-1][:max(1, DECODE_POOL, DECODE_CANDIDATES)]
    pool = [np.unravel_index(int(i), all_z.shape) for i in order]
    n_cand = search_candidates()
    best_z = float(all_z[pool[0]])
    # the pool's candidates with z >= Z3_PAYLOAD (at least the sync-best one), ranked by
    # their total score; the CRC is checked on the DECODE_CANDIDATES best.  When none
    # passes, the sync-best candidate is reported (its decode is the raw guess).
    bits = {}
    for i, cand in enumerate(pool):
        if i and all_z[cand] < Z3_PAYLOAD:
            break
        hi, phase, offset = (int(v) for v in cand)
        bits[cand] = s.bits_at(*all_h[hi], phase, offset)
    ranked = sorted(bits, key=lambda c: -_total_score(*bits[c][:2])) if len(bits) > 1 \
        else list(bits)
    chosen, tried = None, {}
    for cand in ranked[:max(1, DECODE_CANDIDATES)]:
        tried[cand] = _decode_at(*bits[cand][:2], DECODE_LIST)
        if tried[cand][2]:
            chosen = cand
            break
    if chosen is None:
        chosen = pool[0]
    decoded = tried.get(chosen)
    if decoded is None:  # the raw guess only: a CRC match here was not one of the checks
        decoded = _decode_at(*bits[chosen][:2], DECODE_LIST)
        decoded = (decoded[0], decoded[1], False, *decoded[3:])
    start = bits[chosen][2]
    _info, payload, crc_ok, _coded, observed = decoded
    score = float(all_z[chosen])
    present, good, bit_errors = _decide(decoded, score, Z3_PAYLOAD, Z3_MARK_ONLY)
    t, f = (float(v) for v in all_h[chosen[0]])
    confidence = max(0.0, 1.0 - min(1.0, n_cand * _norm_sf(best_z)))
    vh, cid = split_payload(payload) if good else (None, None)
    return WatermarkResult(bool(present), payload if good else None, vh, cid, score, confidence,
                           bool(crc_ok), bit_errors, int(observed.sum()),
                           float(time_origin + start / WM_SR), seconds, payload,
                           version=3 if present else None, time_scale=t, pitch_scale=f,
                           edit=_edit_name(t, f) if present else "none")


def _windows(n: int, window_s: float) -> list[tuple[int, int]]:
    win = int(window_s * WM_SR)
    if n <= int(1.5 * win):
        return [(0, n)]
    return [(a, min(n, a + win)) for a in range(0, n - win // 2, win // 2)]


def detect(audio: np.ndarray, sr: int, key: str = DEFAULT_KEY,
           versions: tuple[int, ...] = (3, 2), search: bool = True) -> WatermarkResult:
    """Look for the watermark in ``audio`` (any crop of ≥ ~5 s of a marked file, also after a
    speed, tempo or pitch change within the searched ranges).

    Args:
        audio: ``(samples,)`` or ``(channels, samples)`` float at ``sr`` Hz.
        sr: sample rate (Hz).
        key: the key used at embedding.
        versions: mark versions looked for, in order (v3 with the scale search, then v2).
        search: search speed / tempo / pitch changes (``False``: unedited v3 marks only, ~50×
            cheaper; used before labelling to find an existing mark).
    Returns:
        A :class:`WatermarkResult`; inputs longer than 1.5 windows (v3: :data:`V3_WINDOW_S`,
        v2: :data:`WINDOW_S`) are searched window by window and the first detection (or the
        best score) is returned.  Too short (< :data:`V3_MIN_DETECT_S`) or silent input gives
        ``present=False`` with ``reason`` ``"too short"`` / ``"silent"``.
    """
    x = to_mono(np.asarray(audio, dtype=np.float32))
    if x.size == 0:
        raise AisingerError("cannot look for a watermark in empty audio")
    if not np.isfinite(x).all():
        raise AisingerError("cannot look for a watermark in audio with NaN/inf samples")
    seconds = x.size / sr
    empty = WatermarkResult(False, None, None, None, 0.0, 0.0, False, None, 0, 0.0, seconds)
    if seconds < V3_MIN_DETECT_S:
        return replace(empty, reason="too short")
    if float(np.abs(x).max()) < SILENCE_LEVEL:
        return replace(empty, reason="silent")
    x16 = resample(x, sr, WM_SR)
    best = None
    for version in versions:
        if version == 3:
            runs = ((lambda y, o: _detect3(y, key, o, search), a, b)
                    for a, b in _windows(len(x16), V3_WINDOW_S))
        elif version == 2:
            runs = ((lambda y, o: _detect16(y, key, o), a, b)
                    for a, b in _windows(len(x16), WINDOW_S))
        else:
            raise AisingerError(f"cannot detect watermark version {version}")
        for fn, a, b in runs:
            res = fn(x16[a:b], a / WM_SR)
            if res.present:
                return replace(res, seconds=seconds)
            if best is None or res.score > best.score:
                best = res
    return replace(best, seconds=seconds)
