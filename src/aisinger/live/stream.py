"""Block-wise (streaming) conversion with an nsf voice.

How a block flows (frame grid: 100 frames/s, ``hop`` samples per frame at the voice's rate)
-----------------------------------------------------------------------------------------
After block ``k`` the converter has heard ``F = k * B`` frames of input (``B`` frames per
block).  It *finalises* frames ``[F - L - B, F - L)`` (``L`` = :data:`LOOKAHEAD_MS` / 10 ms of
lookahead) and returns their audio: the output is the conversion delayed by ``L`` frames, and
a sound reaches the output ``block + lookahead`` after it was sung (the algorithmic latency;
compute time comes on top).  Frames ``[F - L, F)`` are *provisional*: analysed with what has
been heard so far, used as right context only, analysed again by the next block.

Stages (each carries its state between blocks):

* content: the causal student (:class:`~aisinger.live.features.StudentContent`), fed every
  complete log-mel frame of the 16 kHz audio once (the last second + one block of input is
  resampled every block); ``content="whisper-window"`` re-runs Whisper on the last second
  instead (the measured alternative, docs/live.md);
* F0: FCPE on a short window, group-norm statistics running over every frame heard
  (:class:`~aisinger.live.features.FcpeStream`); transpose; unvoiced frames hold the last
  voiced F0 (offline interpolates towards the next voiced one, which lies in the future);
* loudness: the offline Hann-window level, cut at the newest sample;
* retrieval / protect: the offline k-NN blend and consonant protection, per frame;
* decoder: the nsf model on the final frames plus ``receptive_frames + 4`` frames of past
  context and the provisional frames; the harmonic source starts at the cumulative phase of
  the final frames, the noise is position-seeded (:func:`aisinger.convert.nsf._noise`), so
  successive blocks produce the same waveform where they overlap up to the changing right
  context; every block also synthesises ``CROSSFADE_FRAMES`` beyond its end, and the next
  block crossfades linearly from that tail (no click at the joins).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

import soxr

from aisinger.consent import check_voice
from aisinger.convert.nsf import NOISE_BLOCK_FRAMES, NOISE_SEED, synthesize_nsf
from aisinger.convert.retrieval import (DEFAULT_PROTECT, DEFAULT_RETRIEVAL, PROTECT_RAMP_FRAMES,
                                        PROTECT_SILENCE_DB, RETRIEVAL_K, blend_knn,
                                        check_settings, protect_mask, retrieve_content)
from aisinger.dsp.frames import FRAME_RATE, n_frames
from aisinger.dsp.loudness import loudness_db
from aisinger.errors import AisingerError
from aisinger.dsp.signal import check_mono
from aisinger.features import whisper as wh
from aisinger.features.pitch import DEFAULT_F0_HZ, PitchConfig, estimate_f0, fill_unvoiced
from aisinger.io.audio import resample, to_mono
from aisinger.live.features import FcpeStream, StudentContent, WhisperWindow, frame_loudness
from aisinger.progress import track
from aisinger.voice.folder import load_voice

__all__ = ["StreamingConverter", "convert_stream", "convert_whole", "StreamStats", "DEFAULT_BLOCK_MS",
           "LOOKAHEAD_MS", "MIN_BLOCK_MS", "MAX_BLOCK_MS"]

DEFAULT_BLOCK_MS = 80.0
"""Block length (ms) unless told otherwise: latency block + lookahead = 130 ms (target
<= 150 ms); the per-block compute measured against the block in bench/live.py (docs/live.md)."""
LOOKAHEAD_MS = 50.0
"""Right context (ms) the analysis sees beyond the newest final frame, at least: the content
student's lookahead plus one frame for the newest mel frame's window (a student with a longer
lookahead than 40 ms raises it; docs/live.md)."""
MIN_BLOCK_MS = 20.0
MAX_BLOCK_MS = 1000.0
CROSSFADE_FRAMES = 2  # the next block crossfades from this block's predicted tail (20 ms)
CONTEXT_EXTRA = 4  # past frames of decoder context beyond the model's receptive field
HISTORY_S = 2.5  # seconds of input kept (16 kHz window of up to 2 s + margin)
WINDOW16_S = 1.0  # + one block: seconds resampled to 16 kHz per block (content/F0 context)
CONTENT_ENCODERS = ("student", "whisper-window")
KEEP_FRAMES = 64  # final frames kept per feature (decoder context + protect ramp)


@dataclass
class StreamStats:
    """What :func:`convert_stream` measured: per-block compute (ms) against the block's
    duration; ``underruns``: blocks whose compute took longer than their duration (a real-time
    output would have run dry).  ``compute_ms`` is wall time; ``cpu_ms`` the CPU time of the
    converting thread (torch runs in it with 1 thread): on a shared, loaded machine the wall
    time also counts the time other processes held the core."""

    sample_rate: int
    block_ms: float
    latency_ms: float
    blocks: int
    compute_ms: list = field(default_factory=list, repr=False)
    cpu_ms: list = field(default_factory=list, repr=False)

    @property
    def cpu_p50_ms(self) -> float:
        return float(np.percentile(self.cpu_ms, 50)) if self.cpu_ms else 0.0

    @property
    def cpu_p99_ms(self) -> float:
        return float(np.percentile(self.cpu_ms, 99)) if self.cpu_ms else 0.0

    @property
    def cpu_underruns(self) -> int:
        return int(sum(c > self.block_ms for c in self.cpu_ms))

    @property
    def p50_ms(self) -> float:
        return float(np.percentile(self.compute_ms, 50)) if self.compute_ms else 0.0

    @property
    def p99_ms(self) -> float:
        return float(np.percentile(self.compute_ms, 99)) if self.compute_ms else 0.0

    @property
    def underruns(self) -> int:
        return int(sum(c > self.block_ms for c in self.compute_ms))

    def summary(self) -> dict:
        """JSON-able summary (no per-block list)."""
        d = asdict(self)
        d.pop("compute_ms")
        d.pop("cpu_ms")
        return {**d, "p50_ms": round(self.p50_ms, 3), "p99_ms": round(self.p99_ms, 3),
                "max_ms": round(max(self.compute_ms, default=0.0), 3),
                "p99_share_of_block": round(self.p99_ms / self.block_ms, 4),
                "underruns": self.underruns, "cpu_p50_ms": round(self.cpu_p50_ms, 3),
                "cpu_p99_ms": round(self.cpu_p99_ms, 3), "cpu_underruns": self.cpu_underruns}


class _Retriever:
    """The offline cosine k-NN retrieval (:func:`aisinger.convert.retrieval.retrieve_content`)
    with the index normalised once, not per call, and the search in two stages: bfloat16
    similarities to the whole index pick ``RESCORE * k`` candidates, float32 similarities to
    those pick the k neighbours and their weights (as offline: on 300 perturbed index frames
    of a voice the same neighbour sets, weights within 1e-6; 2.4 instead of 3.7 ms of CPU for
    13 frames against 8000 index frames, 1 thread)."""

    RESCORE = 8

    def __init__(self, index: np.ndarray, k: int = RETRIEVAL_K):
        import torch

        self.idx = torch.from_numpy(np.ascontiguousarray(index, dtype=np.float32))
        self.idx_rows = self.idx / self.idx.norm(dim=1, keepdim=True).clamp_min(1e-8)
        self.idx_n16 = self.idx_rows.T.contiguous().to(torch.bfloat16)
        self.k = min(k, index.shape[0])
        self.n_cand = min(self.RESCORE * self.k, index.shape[0])
        self.index = index

    def __call__(self, content: np.ndarray, ratio: np.ndarray) -> np.ndarray:
        import torch

        def knn_mean(c: np.ndarray) -> np.ndarray:
            ct = torch.from_numpy(c)
            cn = ct / ct.norm(dim=1, keepdim=True).clamp_min(1e-8)
            _, cand = torch.topk(cn.to(torch.bfloat16) @ self.idx_n16, self.n_cand, dim=1)
            exact = torch.einsum("bd,bcd->bc", cn, self.idx_rows[cand])
            w, j = torch.topk(exact, self.k, dim=1)
            top = torch.gather(cand, 1, j)
            w = w.clamp_min(1e-4)
            w = w / w.sum(dim=1, keepdim=True)
            return torch.einsum("bk,bkd->bd", w, self.idx[top]).numpy()

        with torch.inference_mode():
            return blend_knn(content, self.index, ratio, knn_mean)


def _protect(f0: np.ndarray, loud: np.ndarray, protect: float) -> np.ndarray:
    """:func:`aisinger.convert.retrieval.protect_mask` on a window of frames."""
    m = ((f0 <= 0) & (loud > PROTECT_SILENCE_DB)).astype(np.float32) * float(protect)
    if protect > 0 and PROTECT_RAMP_FRAMES > 0 and m.size:
        from scipy.ndimage import uniform_filter1d

        m = uniform_filter1d(m, size=2 * PROTECT_RAMP_FRAMES + 1, mode="nearest")
    return m.astype(np.float32)


def _blips(f0: np.ndarray) -> np.ndarray:
    """Unvoice single voiced frames between unvoiced ones (the offline ``remove_blips``)."""
    v = f0 > 0
    iso = v.copy()
    iso[1:] &= ~v[:-1]
    iso[:-1] &= ~v[1:]
    iso[0] = iso[-1] = False  # the window's edges: their outer neighbour is not in view
    return np.where(iso, 0.0, f0)


class _Ring:
    """Per-frame arrays of the final frames, indexed by absolute frame, last KEEP_FRAMES."""

    def __init__(self, **widths: int):
        self.arrays = {k: np.zeros((0, w) if w else (0,), np.float64 if not w else np.float32)
                       for k, w in widths.items()}
        self.start = 0  # absolute frame of row 0
        self.end = 0

    def append(self, a: int, **values: np.ndarray) -> None:
        if a != self.end:
            raise AssertionError(f"ring: appending frame {a}, expected {self.end}")
        for k, v in values.items():
            self.arrays[k] = np.concatenate([self.arrays[k], v.astype(self.arrays[k].dtype)])
        self.end = a + next(iter(values.values())).shape[0]
        drop = max(0, self.end - self.start - KEEP_FRAMES)
        if drop:
            self.arrays = {k: v[drop:] for k, v in self.arrays.items()}
            self.start += drop

    def get(self, name: str, a: int, b: int) -> np.ndarray:
        if a < self.start or b > self.end:
            raise AssertionError(f"ring: frames [{a}, {b}) outside [{self.start}, {self.end})")
        return self.arrays[name][a - self.start:b - self.start]


class StreamingConverter:
    """Convert a stream of mono blocks with an nsf voice (see the module docstring).

    voice_dir: a voice folder (its consent record must permit ``convert``); block_ms: block
    length, a multiple of 10 ms in [MIN_BLOCK_MS, MAX_BLOCK_MS]; transpose: semitones;
    threads: torch / CTranslate2 threads (the process-wide torch setting is changed);
    retrieval / protect: as :func:`aisinger.convert.convert`; f0_precision: ``int8``
    (default) or ``float32`` weights of the streaming FCPE (docs/live.md).

    ``sample_rate`` (the voice's) is the rate of input and output blocks, ``block_samples``
    their length, ``latency_ms`` the algorithmic latency (block + lookahead; the decoder adds
    no delay of its own).  :meth:`process` takes one block and returns one; :meth:`reset`
    starts a new stream.
    """

    def __init__(self, voice_dir, *, block_ms: float = DEFAULT_BLOCK_MS, transpose: float = 0.0,
                 threads: int = 1, retrieval: float = DEFAULT_RETRIEVAL,
                 protect: float = DEFAULT_PROTECT, content: str = "student",
                 content_model=None, f0_precision: str = "int8"):
        ms = float(block_ms)
        if not (math.isfinite(ms) and MIN_BLOCK_MS <= ms <= MAX_BLOCK_MS
                and abs(ms / 10 - round(ms / 10)) < 1e-9):
            raise AisingerError(f"live: block length {block_ms} ms must be a multiple of 10 ms "
                                f"from {MIN_BLOCK_MS:g} to {MAX_BLOCK_MS:g} ms")
        if not math.isfinite(transpose) or abs(transpose) > 48:
            raise AisingerError(f"live: transpose must be a number of semitones in [-48, 48], "
                                f"got {transpose}")
        check_settings(retrieval, protect, "live")
        if int(threads) < 1:
            raise AisingerError(f"live: threads must be >= 1, got {threads}")
        import torch

        torch.set_num_threads(int(threads))
        check_voice(voice_dir, "convert")
        voice = load_voice(voice_dir)
        if voice.family != "nsf":
            raise AisingerError(f"{voice_dir}: live conversion needs an nsf voice (the default "
                                f"model); this one is {voice.family!r}")
        if content not in CONTENT_ENCODERS:
            raise AisingerError(f"live: unknown content encoder {content!r} (use one of "
                                f"{', '.join(CONTENT_ENCODERS)})")

        self.voice = voice
        self.model = voice.model
        cfg = self.model.cfg
        self.sample_rate = int(cfg.sample_rate)
        self.hop = cfg.hop
        if cfg.frame_rate != FRAME_RATE:
            raise AisingerError(f"{voice_dir}: live conversion needs a {FRAME_RATE} frames/s "
                                f"voice, this one has {cfg.frame_rate}")
        self.block_frames = int(round(ms / 10))
        self.block_ms = ms
        self.block_samples = self.block_frames * self.hop
        g = math.gcd(self.sample_rate, 16000)
        self.rs_step = self.sample_rate // g  # 16 kHz windows start on multiples of this
        self.transpose = float(transpose)
        self.retrieval = float(retrieval)
        self.protect = float(protect)
        self.margin = cfg.receptive_frames + CONTEXT_EXTRA
        self.lookahead = int(round(LOOKAHEAD_MS / 10))
        if content == "student":
            self.content = StudentContent(content_model)
            # a student with a longer lookahead gets it (one frame more: the newest mel
            # frame's window), at the cost of latency
            self.lookahead = max(self.lookahead, self.content.lookahead + 1)
        else:  # the measured alternative (docs/live.md): Whisper on a short sliding window
            cc = voice.features.content
            self.content = WhisperWindow(threads=int(threads), compute_type=cc.compute_type,
                                         position_components=cc.position_components)
        self.latency_ms = ms + 10.0 * self.lookahead
        pitch = voice.features.pitch
        self.pitch = FcpeStream(PitchConfig(method="fcpe", fmin=pitch.fmin, fmax=pitch.fmax,
                                            silence_db=pitch.silence_db),
                                 precision=f0_precision)
        self.remove_blips = pitch.remove_blips
        self.loud_cfg = voice.features.loudness
        self.retriever = _Retriever(voice.index) if voice.index is not None and \
            voice.index.shape[0] and self.retrieval > 0 else None
        fade = CROSSFADE_FRAMES * self.hop
        self.ramp = ((np.arange(fade) + 0.5) / fade).astype(np.float32)
        self._noise_cache: dict[int, object] = {}
        self.reset()

    # ---------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Start a new stream: forget all audio, features, phase and the crossfade tail."""
        self.n_in = 0  # samples heard
        self.x = np.zeros(0, np.float32)  # recent input at sample_rate
        self.x_start = 0  # absolute sample of self.x[0]
        self.final = 0  # frames [0, final) are final
        # final frames: content (after retrieval), filled transposed F0, voiced flag, loudness,
        # source phase at the frame's first sample, gated F0 before blip removal
        self.ring = _Ring(content=self.model.cfg.content_dim, f0=0, voiced=0, loud=0, phase=0,
                          raw=0)
        self.last_f0 = DEFAULT_F0_HZ
        self.next_phase = 0.0  # source phase (cycles) at the first sample of frame `final`
        self.tail = None
        self.pitch.reset()
        self.content.reset()

    # ---------------------------------------------------------------------------------------
    def _noise(self, lo: int, hi: int):
        """Position-seeded source noise of frames [lo, hi) (as convert/nsf.py), its 1 s blocks
        cached."""
        import torch

        cfg = self.model.cfg
        n = NOISE_BLOCK_FRAMES * cfg.hop
        parts = []
        for blk in range(lo // NOISE_BLOCK_FRAMES, -(-hi // NOISE_BLOCK_FRAMES)):
            if blk not in self._noise_cache:
                gen = torch.Generator().manual_seed(NOISE_SEED * 1_000_003 + blk)
                self._noise_cache[blk] = torch.randn(n, cfg.harmonics, generator=gen)
                for old in [k for k in self._noise_cache if k < blk - 1]:
                    del self._noise_cache[old]
            parts.append(self._noise_cache[blk])
        start = lo * cfg.hop - (lo // NOISE_BLOCK_FRAMES) * n
        return torch.cat(parts)[start:start + (hi - lo) * cfg.hop][None]

    def _check(self, block) -> np.ndarray:
        x = np.asarray(block)
        if x.ndim != 1 or x.shape[0] != self.block_samples:
            raise AisingerError(f"live: a block must be {self.block_samples} mono samples "
                                f"({self.block_ms:g} ms at {self.sample_rate} Hz), got shape "
                                f"{tuple(x.shape)}")
        if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
            raise AisingerError(f"live: a block must hold real samples, got dtype {x.dtype}")
        x = x.astype(np.float32)
        if not np.all(np.isfinite(x)):
            raise AisingerError("live: the block contains NaN or infinite samples")
        return x

    def _hear(self, x: np.ndarray) -> None:
        """Append a block to the input histories (at sample_rate and at 16 kHz)."""
        keep = int(HISTORY_S * self.sample_rate)
        self.x = np.concatenate([self.x, x])
        self.n_in += x.shape[0]
        if self.x.shape[0] > keep:
            cut = (self.x.shape[0] - keep) // self.hop * self.hop
            self.x, self.x_start = self.x[cut:], self.x_start + cut

    def _x16(self) -> tuple[np.ndarray, int]:
        """The last WINDOW16_S of input at 16 kHz and the absolute index of its first sample
        (resampled in one go every block: its newest samples are then exact up to soxr's
        end-of-signal handling, where a resampling stream would hold them back)."""
        if self.sample_rate == 16000:
            return self.x, self.x_start
        n = int((WINDOW16_S + self.block_ms / 1000) * self.sample_rate)
        s0 = max(self.x_start, self.n_in - n)
        s0 = -(-s0 // self.rs_step) * self.rs_step
        seg = self.x[s0 - self.x_start:]
        y = soxr.resample(seg, self.sample_rate, 16000, quality="HQ").astype(np.float32)
        return y, s0 * 16000 // self.sample_rate

    def process(self, block: np.ndarray) -> np.ndarray:
        """One block of input (``block_samples`` float mono samples at ``sample_rate``) ->
        one block of converted audio (float32, same length): the conversion of the input
        ``latency_ms - block_ms`` earlier (silence until the stream has filled)."""
        import torch

        x = self._check(block)
        self._hear(x)
        hop, nb, la = self.hop, self.block_frames, self.lookahead
        heard = self.n_in // hop  # frames [0, heard) have their centre in the input
        e = heard - la  # final after this block: [0, e)
        out = np.zeros(self.block_samples, np.float32)
        a = max(0, e - nb)  # output frames [e - nb, e); negative ones are silence
        if e <= 0:
            return out
        assert a == self.final, (a, self.final)
        p = heard  # provisional frames [e, p)
        # ---- features of frames [a, p) --------------------------------------------------
        x16, x16_start = self._x16()
        content = self.content.frames(x16, x16_start, a, p)
        f0_raw = self.pitch.frames(x16, x16_start, a, p, e)
        loud = frame_loudness(self.x, self.x_start, hop, self.sample_rate, a, p, self.loud_cfg)
        # blip removal and the protect ramp look at neighbours: prepend final frames
        back = min(a - self.ring.start, PROTECT_RAMP_FRAMES) if a > 0 else 0
        f0_win = np.concatenate([self.ring.get("raw", a - back, a), f0_raw])
        loud_win = np.concatenate([self.ring.get("loud", a - back, a), loud])
        f0_clean = _blips(f0_win) if self.remove_blips else f0_win
        keep = _protect(f0_clean, loud_win, self.protect)[back:]
        f0_clean = f0_clean[back:]
        if self.retriever is not None:
            content = self.retriever(content, self.retrieval * (1 - keep))
        f0t = f0_clean * 2.0 ** (self.transpose / 12.0)
        voiced = (f0t > 0).astype(np.float32)
        filled = np.empty_like(f0t)
        last = self.last_f0
        for i, v in enumerate(f0t):
            if v > 0:
                last = v
            filled[i] = last
            if i == e - a - 1:
                last_final = last
        # ---- store the final frames ----------------------------------------------------
        nf = e - a
        src = filled[:nf].astype(np.float64) * voiced[:nf]
        cyc = np.concatenate([[self.next_phase], self.next_phase +
                              np.cumsum(src * hop / self.sample_rate)])
        self.ring.append(a, content=content[:nf], f0=filled[:nf], voiced=voiced[:nf],
                         loud=loud[:nf], phase=np.mod(cyc[:nf], 1.0), raw=f0_raw[:nf])
        self.next_phase = float(np.mod(cyc[nf], 1.0))
        self.last_f0 = last_final
        self.final = e
        # ---- decoder on [lo, p) with the final past as context ---------------------------
        lo = max(self.ring.start, a - self.margin)
        fade = CROSSFADE_FRAMES
        hi = max(p, e + fade)

        def cat(name, prov):
            return np.concatenate([self.ring.get(name, lo, a), prov]) if lo < a else prov

        c_win = cat("content", content)
        f_win = cat("f0", filled)
        v_win = cat("voiced", voiced)
        l_win = cat("loud", loud)
        if hi > p:  # edge-pad to cover the crossfade tail
            idx = np.minimum(np.arange(hi - lo), p - lo - 1)
            c_win, f_win, v_win, l_win = (w[idx] for w in (c_win, f_win, v_win, l_win))
        phase0 = float(self.ring.get("phase", lo, lo + 1)[0])
        with torch.inference_mode():
            y = self.model(*(torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32))[None]
                             for w in (c_win, f_win, v_win, l_win)),
                           noise=self._noise(lo, hi),
                           phase_offset=torch.tensor([phase0], dtype=torch.float64))[0].numpy()
        seg = y[(a - lo) * hop:(e + fade - lo) * hop]
        body, tail = seg[:nf * hop].copy(), seg[nf * hop:].copy()
        if self.tail is not None:
            m = min(self.tail.shape[0], body.shape[0])
            body[:m] = self.tail[:m] * (1 - self.ramp[:m]) + body[:m] * self.ramp[:m]
        self.tail = tail
        # ---- protect: mix the source back on consonants and breaths -----------------------
        if self.protect > 0 and np.any(keep[:nf + 1] > 0):
            km = keep[:nf + 1] if keep.shape[0] > nf else np.append(keep, keep[-1])
            pos = np.arange(nf * hop) / hop
            m = np.interp(pos, np.arange(km.shape[0]), km).astype(np.float32)
            s = self.x[a * hop - self.x_start:e * hop - self.x_start]
            body += m * (s - body)
        if not np.all(np.isfinite(body)):
            raise AisingerError(f"{self.voice.path}: the model produced invalid audio (NaN)")
        out[self.block_samples - body.shape[0]:] = body
        return out


def convert_stream(voice_dir, audio, sr: int, *, progress: bool = False,
                   converter: StreamingConverter | None = None, **kw
                   ) -> tuple[np.ndarray, StreamStats]:
    """Convert a whole signal block by block, as a live session would, timing every block.

    audio: (samples,) or (channels, samples) at ``sr`` (mixed to mono, resampled to the
    voice's rate); ``kw``: :class:`StreamingConverter` options (or pass a ready ``converter``,
    which is reset first).  The input is padded with silence so the last sound comes out, and
    the result is shifted back by the lookahead: (audio (samples,) float32 at the voice's rate
    with round(len x rate / sr) samples, aligned with the input, and :class:`StreamStats`).
    Blocks are processed as fast as they compute (no sleeping): a block whose compute exceeds
    its duration is an underrun.
    """
    conv = converter if converter is not None else StreamingConverter(voice_dir, **kw)
    conv.reset()
    x = np.asarray(audio, dtype=np.float32)
    x = check_mono(to_mono(x) if x.ndim == 2 else x, int(sr), "live")
    rate = conv.sample_rate
    n = int(round(x.shape[0] * rate / int(sr)))
    if int(sr) != rate:
        x = resample(x, int(sr), rate)
    delay = conv.lookahead * conv.hop
    bs = conv.block_samples
    total = -(-(n + delay) // bs) * bs
    xp = np.zeros(total, np.float32)
    xp[:x.shape[0]] = x[:total]
    outs, times, cpu = [], [], []
    blocks = range(0, total, bs)
    if progress:
        blocks = track(blocks, total=len(blocks), description="live (simulated)")
    for s in blocks:
        t0, c0 = time.perf_counter(), time.thread_time()
        outs.append(conv.process(xp[s:s + bs]))
        times.append((time.perf_counter() - t0) * 1000.0)
        cpu.append((time.thread_time() - c0) * 1000.0)
    y = np.concatenate(outs)[delay:delay + n]
    stats = StreamStats(sample_rate=rate, block_ms=conv.block_ms, latency_ms=conv.latency_ms,
                        blocks=len(times), compute_ms=times, cpu_ms=cpu)
    return y.astype(np.float32), stats


def voice_rate(voice_dir: str | Path) -> int:
    """The sample rate a live stream with this voice runs at (without loading the model)."""
    return int(load_voice(voice_dir).model.cfg.sample_rate)


def convert_whole(converter: StreamingConverter, audio: np.ndarray, sr: int) -> np.ndarray:
    """The same conversion as ``converter`` streams (same voice, content encoder, settings),
    computed on the whole signal at once: the offline features (FCPE over the whole signal,
    the student over the whole log-mel, the offline loudness, F0 gaps interpolated) and the
    chunked offline synthesis.  The streamed output differs from it only by what streaming
    changes (lookahead-limited analysis, held F0 in gaps, the decoder's right context), which
    is what the tests and bench/live.py measure.  Returns (samples,) float32 at the voice's
    rate, aligned with the input."""
    import torch

    from aisinger.nn.live_content import log_mel

    conv = converter
    rate = conv.sample_rate
    x = check_mono(np.asarray(audio, np.float32), int(sr), "live")
    x = resample(x, int(sr), rate) if int(sr) != rate else x
    t = n_frames(x.shape[0], rate)
    if not isinstance(conv.content, StudentContent):
        raise AisingerError("live: convert_whole needs the student content encoder")
    net = conv.content.net
    la = net.cfg.lookahead
    power = wh.mel_power(resample(x, rate, 16000))
    with torch.inference_mode():
        lm = log_mel(torch.from_numpy(power))[None]
        lm = torch.cat([lm, lm[:, :, -1:].expand(-1, -1, la)], dim=2)
        content = net(lm)[0, la:].numpy()
    content = content[np.minimum(np.arange(t), content.shape[0] - 1)]
    pitch = conv.pitch.config
    f0 = estimate_f0(x, rate, PitchConfig(method="fcpe", fmin=pitch.fmin, fmax=pitch.fmax,
                                          silence_db=pitch.silence_db,
                                          remove_blips=conv.remove_blips))
    loud = loudness_db(x, rate, conv.loud_cfg)
    keep = protect_mask(f0, loud, conv.protect)
    if conv.retriever is not None:
        content = retrieve_content(content, conv.voice.index, conv.retrieval * (1 - keep))
    f0f, voiced = fill_unvoiced(f0 * 2.0 ** (conv.transpose / 12.0))
    y = synthesize_nsf(conv.model, np.ascontiguousarray(content, np.float32), f0f, voiced,
                       loud.astype(np.float32), x.shape[0])
    if conv.protect > 0 and np.any(keep > 0):
        m = np.interp(np.arange(x.shape[0]) / conv.hop, np.arange(keep.shape[0]), keep)
        y = y + m.astype(np.float32) * (x - y)
    return y.astype(np.float32)
