"""Live voice changing over a WebSocket (``/api/live/ws``): the protocol and one session.

A browser (the ``/live-voice`` page) or any client streams microphone audio to the server and
gets the converted voice back, block by block, from one
:class:`aisinger.live.StreamingConverter` per connection.  The protocol (docs/service.md,
"Live voice"):

1. The client opens the socket and sends a JSON **hello** (text frame)::

       {"type": "hello", "token": "ais_…", "voice": "slt", "sample_rate": 24000,
        "channels": 1, "format": "f32", "transpose": 0, "block_ms": null, "record": false}

   ``token`` may instead come as ``Authorization: Bearer …`` on the upgrade request (browsers
   cannot set that header; tokens never go in URLs).  ``sample_rate`` must be the voice's
   streaming rate (``GET /api/live/voices`` lists it): the client resamples.
2. The server answers **ready** with its block size, rate and algorithmic latency.
3. Both ways: binary frames of mono PCM (``f32``: little-endian float32, ``s16``:
   little-endian int16).  Client frames may have any length; the server cuts them into
   blocks and answers every block with exactly one block of converted audio, in order.
4. Text frames from the client: ``{"type": "ping", "t": …}`` (answered ``pong`` with the same
   ``t``, for the round trip) and ``{"type": "stop"}`` (finish: the server saves the
   recording, answers ``bye`` and closes with 1000).  Every ``STATS_EVERY_S`` the server sends
   ``stats`` (per-block compute, queue, drops, latency).

Everything that goes wrong closes the socket with a code from :class:`Close` and a one-line
reason; the session's converter, thread and slot are released and other sessions go on.
Conversion runs in one worker thread per session (never on the event loop); at most
``ServiceConfig.max_live_sessions`` sessions run at once.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import json
import logging
import math
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aisinger.consent import check_scope, load_consent
from aisinger.dsp.peak import TRUE_PEAK_CEILING_DBTP
from aisinger.errors import AisingerError
from aisinger.io.fileio import write_json
from aisinger.label import label_audio, policy_for, write_labelled
from aisinger.layout import CONSENT_FILE, VOICE_CONFIG
from aisinger.live import StreamingConverter
from aisinger.service.context import CONSENT_SCOPE
from aisinger.service.media import UploadError, resolve_voice
from aisinger.service.store import Principal, Store, new_id
from aisinger.voice.folder import load_voice

log = logging.getLogger("aisinger.service.live")

HELLO_TIMEOUT_S = 10.0
"""The hello must arrive this soon after the socket opens."""
IDLE_TIMEOUT_S = 10.0
"""A session that receives nothing for this long is closed (a client that stopped sending)."""
FLOOD_SLACK_S = 2.0
"""A client may be at most this far ahead of real time in audio sent (a burst after a
network stall); more is a flood and closes the session."""
MAX_MESSAGES_PER_S = 200
"""Messages accepted in any one-second window (a browser sends ~10-50)."""
MAX_QUEUE_MS = 1000.0
"""Audio waiting for the converter, at most; when the server falls behind, the oldest waiting
block is dropped (answered with silence, counted in ``stats.dropped``), so the delay stays
bounded and every input block still gets exactly one output block."""
MAX_FRAME_S = 1.0
"""The longest binary frame a client may send (seconds of audio)."""
STATS_EVERY_S = 0.5
"""How often the server sends ``stats``."""
LIVE_USES = ("convert", "serve")
"""What a voice's consent must permit (at the service's scope) for live use."""
RECORDINGS = "live"
"""Folder of saved recordings in the data folder: ``<id>.flac`` + ``<id>.json``."""
RECORDING_ID = re.compile(r"^[0-9a-f]{32}$")
FORMATS = {"f32": np.dtype("<f4"), "s16": np.dtype("<i2")}
"""Sample formats of the binary frames."""
HELLO_KEYS = {"type", "token", "voice", "sample_rate", "channels", "format", "transpose",
              "block_ms", "record"}
MAX_TRANSPOSE = 24.0
NOTICE = {"en": "AI-generated voice: what you hear is converted by an AI voice model.",
          "zh": "AI 生成的声音：你听到的是 AI 声音模型转换的结果。"}


class Close:
    """Close codes: standard ones where they fit, ``4xxx`` mirroring HTTP statuses."""

    NORMAL = 1000          # after "stop"
    GOING_AWAY = 1001      # the server shuts down
    MALFORMED = 1007       # a frame that is not the announced PCM, bad JSON after the hello
    TOO_BIG = 1009         # a frame over MAX_FRAME_S
    SERVER_ERROR = 1011    # the converter failed
    BUSY = 1013            # max_live_sessions reached: try again later
    BAD_HELLO = 4400       # a missing/invalid hello: rate, channels, format, block, transpose,
    #                        a voice the converter cannot stream
    UNAUTHENTICATED = 4401  # missing or invalid token
    FORBIDDEN = 4403       # a worker token; a voice whose consent does not allow live use
    UNKNOWN_VOICE = 4404
    TIMEOUT = 4408         # no hello in time; nothing received for IDLE_TIMEOUT_S
    FLOOD = 4429           # faster than real time, or too many messages


class LiveClosed(Exception):
    """End a session with ``code`` and ``reason`` (sent in the close frame)."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


def close_reason(text: str) -> str:
    """``text`` cut to the 123 UTF-8 bytes a WebSocket close reason may hold."""
    data = " ".join(str(text).split()).encode("utf-8")
    if len(data) <= 123:
        return data.decode("utf-8")
    return data[:120].decode("utf-8", errors="ignore") + "..."


@dataclass(frozen=True)
class Hello:
    """The client's hello, checked (see the module docstring)."""

    voice: str
    sample_rate: int
    channels: int = 1
    format: str = "f32"
    transpose: float = 0.0
    block_ms: float | None = None
    record: bool = False
    token: str | None = None

    @classmethod
    def parse(cls, message: dict) -> Hello:
        """The hello from a received ASGI message (raises :class:`LiveClosed`)."""
        text = message.get("text")
        if text is None:
            raise LiveClosed(Close.BAD_HELLO, "expected a JSON hello as the first (text) "
                                              "message, got binary data")
        try:
            doc = json.loads(text)
        except ValueError:
            raise LiveClosed(Close.BAD_HELLO, "hello: not JSON") from None
        if not isinstance(doc, dict) or doc.get("type") != "hello":
            raise LiveClosed(Close.BAD_HELLO, 'hello: expected {"type": "hello", ...}')
        unknown = sorted(set(doc) - HELLO_KEYS)
        if unknown:
            raise LiveClosed(Close.BAD_HELLO, f"hello: unknown field {unknown[0][:40]!r}")

        def number(key: str, default=None, integer: bool = False):
            v = doc.get(key, default)
            if v is None and default is None and key in ("block_ms",):
                return None
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                    or (integer and v != int(v)):
                raise LiveClosed(Close.BAD_HELLO,
                                 f"hello: {key} must be {'an integer' if integer else 'a number'}"
                                 f", got {json.dumps(v)[:30]}")
            return int(v) if integer else float(v)

        voice = doc.get("voice")
        if not isinstance(voice, str) or not voice:
            raise LiveClosed(Close.BAD_HELLO, "hello: voice (a voice ID) is missing")
        if "sample_rate" not in doc:
            raise LiveClosed(Close.BAD_HELLO, "hello: sample_rate is missing")
        fmt = doc.get("format", "f32")
        if fmt not in FORMATS:
            raise LiveClosed(Close.BAD_HELLO, f"hello: format must be one of "
                                              f"{', '.join(FORMATS)}, got {json.dumps(fmt)[:30]}")
        token = doc.get("token")
        if token is not None and not isinstance(token, str):
            raise LiveClosed(Close.UNAUTHENTICATED, "missing or invalid API token")
        record = doc.get("record", False)
        if not isinstance(record, bool):
            raise LiveClosed(Close.BAD_HELLO, "hello: record must be true or false")
        h = cls(voice=voice, sample_rate=number("sample_rate", integer=True),
                channels=number("channels", 1, integer=True), format=fmt,
                transpose=number("transpose", 0.0), block_ms=number("block_ms"),
                record=record, token=token)
        if h.channels != 1:
            raise LiveClosed(Close.BAD_HELLO, f"hello: channels {h.channels}: send mono "
                                              "(1 channel); mix down in the client")
        if abs(h.transpose) > MAX_TRANSPOSE:
            raise LiveClosed(Close.BAD_HELLO, f"hello: transpose {h.transpose:g} is outside "
                                              f"+-{MAX_TRANSPOSE:g} semitones")
        return h


def authorise(store: Store, secret: str | None) -> Principal:
    """The client principal of ``secret`` (raises :class:`LiveClosed` 4401/4403)."""
    p = store.authenticate(secret)
    if p is None:
        raise LiveClosed(Close.UNAUTHENTICATED, "missing or invalid API token")
    if p.role not in ("user", "admin"):
        raise LiveClosed(Close.FORBIDDEN, "this token cannot use the client API")
    return p


def live_voice(voices_dir: Path, voice_id: str, scope: str) -> Path:
    """The folder of a voice that may be used live (raises :class:`LiveClosed` 4404/4403)."""
    try:
        voice_dir = resolve_voice(voices_dir, voice_id)
    except UploadError:
        raise LiveClosed(Close.UNKNOWN_VOICE, f"voice {voice_id[:64]}: no such voice") from None
    try:
        record = load_consent(voice_dir / CONSENT_FILE)
        for use in LIVE_USES:
            check_scope(record, f"{use}:{scope}")
    except AisingerError as err:
        raise LiveClosed(Close.FORBIDDEN, f"voice {voice_id}: {err}") from None
    return voice_dir


@functools.lru_cache(maxsize=64)
def _stream_rate(voice_dir: str, stamp: int) -> int:
    return int(load_voice(Path(voice_dir)).sample_rate)


def voice_stream_rate(voice_dir: Path) -> int:
    """The sample rate a voice streams at (what a client must send and will get), cached per
    voice folder until its config changes."""
    cfg = Path(voice_dir) / VOICE_CONFIG
    return _stream_rate(str(voice_dir), cfg.stat().st_mtime_ns)


class Sessions:
    """The live sessions of one app (``max_live_sessions`` at most); event-loop only."""

    def __init__(self, limit: int):
        self.limit = limit
        self.active: dict[str, str] = {}  # session id -> owner

    def acquire(self, sid: str, owner: str) -> None:
        if len(self.active) >= self.limit:
            raise LiveClosed(Close.BUSY, f"{len(self.active)} live sessions are running (the "
                                         f"server's limit); try again later")
        self.active[sid] = owner

    def release(self, sid: str) -> None:
        self.active.pop(sid, None)


@dataclass
class Stats:
    """Per-session counters, sent as ``stats`` messages."""

    blocks: int = 0
    dropped: int = 0
    frames: int = 0
    compute_ms: collections.deque = field(default_factory=lambda: collections.deque(maxlen=400))
    server_ms: collections.deque = field(default_factory=lambda: collections.deque(maxlen=400))

    def message(self, block_ms: float, latency_ms: float, queued: int, recorded_s: float) -> dict:
        def summary(xs) -> dict:
            if not xs:
                return {"last": None, "mean": None, "p95": None, "max": None}
            a = np.asarray(xs)
            return {"last": round(float(a[-1]), 2), "mean": round(float(a.mean()), 2),
                    "p95": round(float(np.percentile(a, 95)), 2),
                    "max": round(float(a.max()), 2)}

        comp = summary(self.compute_ms)
        return {"type": "stats", "blocks": self.blocks, "dropped": self.dropped,
                "queued": queued, "block_ms": round(block_ms, 3),
                "latency_ms": round(latency_ms, 3), "compute_ms": comp,
                "server_ms": summary(self.server_ms),
                "rtf": None if comp["mean"] is None else round(comp["mean"] / block_ms, 3),
                "recorded_s": round(recorded_s, 3)}


DROPPED = None
"""Marker of a dropped block in the session queue (answered with silence)."""
STOP = "stop"
"""Marker of the end of the stream in the session queue."""


class LiveSession:
    """One WebSocket connection: hello, converter, frames in, blocks out, recording.

    ``ws`` is a Starlette ``WebSocket``; ``factory(voice_dir, **kw)`` builds the converter
    (:class:`aisinger.live.StreamingConverter`).
    """

    def __init__(self, ws, ctx, sessions: Sessions, factory=StreamingConverter):
        self.ws, self.ctx, self.sessions, self.factory = ws, ctx, sessions, factory
        self.sid = new_id()
        self.stats = Stats()
        self.executor: ThreadPoolExecutor | None = None
        self.queue: collections.deque = collections.deque()
        self.wakeup = asyncio.Event()
        self.recorded: list[np.ndarray] = []
        self.recorded_n = 0
        self.record_full = False

    # -- the whole session ---------------------------------------------------------------
    async def run(self) -> None:
        ws = self.ws
        await ws.accept()
        acquired = False
        try:
            msg = await self._receive(HELLO_TIMEOUT_S, "no hello within "
                                      f"{HELLO_TIMEOUT_S:g} s of opening the socket")
            hello = Hello.parse(msg)
            secret = hello.token
            if secret is None:
                auth = ws.headers.get("authorization", "")
                secret = auth[7:].strip() if auth[:7].lower() == "bearer " else None
            self.principal = authorise(self.ctx.store, secret)
            cfg = self.ctx.cfg
            self.voice_dir = live_voice(cfg.voices_dir, hello.voice, CONSENT_SCOPE)
            self.hello = hello
            rate = await asyncio.get_running_loop().run_in_executor(
                None, voice_stream_rate, self.voice_dir)
            self._check_rate(rate)  # before loading a converter for nothing
            self.sessions.acquire(self.sid, self.principal.name)
            acquired = True
            self.executor = ThreadPoolExecutor(
                1, thread_name_prefix=f"aisinger-live-{self.sid[:6]}")
            await self._start(hello)
            await self._stream()
        except LiveClosed as c:
            await self._finish(c.code, self.ctx.public(c.reason))
        except _Disconnected:
            await self._finish(None, "client went away")
        except Exception as exc:  # noqa: BLE001 - one session's failure closes only it
            log.exception("live session %s", self.sid)
            await self._finish(Close.SERVER_ERROR, f"server error: {self.ctx.public(str(exc))}")
        finally:
            if self.recorded:  # a client gone mid-stream (the task may be cancelled): a thread
                threading.Thread(target=self._save, name=f"aisinger-live-save-{self.sid[:6]}"
                                 ).start()
            if acquired:
                self.sessions.release(self.sid)
            if self.executor is not None:
                self.executor.shutdown(wait=False, cancel_futures=True)

    async def _start(self, hello: Hello) -> None:
        loop = asyncio.get_running_loop()
        kw = {"transpose": hello.transpose, "threads": self.ctx.cfg.live_threads}
        if hello.block_ms is not None:
            kw["block_ms"] = hello.block_ms
        t0 = time.monotonic()
        try:
            self.conv = await loop.run_in_executor(self.executor,
                                                   lambda: self.factory(self.voice_dir, **kw))
        except AisingerError as err:  # what was asked (block length, voice family) cannot be
            raise LiveClosed(Close.BAD_HELLO, f"voice {hello.voice}: "  # done by this converter
                             f"{self.ctx.public(str(err))}") from None
        conv = self.conv
        log.info("live session %s: %s's converter for voice %s ready in %.1f s", self.sid,
                 self.principal.name, hello.voice, time.monotonic() - t0)
        self._check_rate(conv.sample_rate)
        self.dtype = FORMATS[hello.format]
        self.block = int(conv.block_samples)
        self.block_ms = 1000.0 * self.block / conv.sample_rate
        self.max_queue = max(2, math.ceil(MAX_QUEUE_MS / self.block_ms))
        self.max_frame = int(MAX_FRAME_S * conv.sample_rate)
        self.max_record = int(self.ctx.cfg.live_max_record_s * conv.sample_rate)
        self.pending = np.zeros(0, np.float32)
        await self.ws.send_text(json.dumps({
            "type": "ready", "session": self.sid, "voice": hello.voice,
            "sample_rate": conv.sample_rate, "channels": 1, "format": hello.format,
            "block_samples": self.block, "block_ms": round(self.block_ms, 3),
            "latency_ms": round(float(conv.latency_ms), 3), "max_queue_blocks": self.max_queue,
            "max_frame_samples": self.max_frame, "stats_every_s": STATS_EVERY_S,
            "record": hello.record, "max_record_s": self.ctx.cfg.live_max_record_s,
            "ai_generated": True, "notice": NOTICE}))
        self.t_ready = time.monotonic()

    def _check_rate(self, rate: int) -> None:
        if self.hello.sample_rate != rate:
            raise LiveClosed(Close.BAD_HELLO, f"sample_rate {self.hello.sample_rate}: voice "
                             f"{self.hello.voice} streams at {rate} Hz; resample in the client")

    # -- streaming -------------------------------------------------------------------------
    async def _stream(self) -> None:
        self.worker = asyncio.create_task(self._convert_loop())
        self.samples_in = 0
        window: collections.deque = collections.deque()
        try:
            while True:
                msg = await self._receive(IDLE_TIMEOUT_S, f"nothing received for "
                                          f"{IDLE_TIMEOUT_S:g} s: the client stopped sending")
                now = time.monotonic()
                window.append(now)
                while window and window[0] < now - 1.0:
                    window.popleft()
                if len(window) > MAX_MESSAGES_PER_S:
                    raise LiveClosed(Close.FLOOD, f"flood: more than {MAX_MESSAGES_PER_S} "
                                                  "messages in one second")
                if msg.get("bytes") is not None:
                    self._frame(msg["bytes"], now)
                elif await self._control(msg.get("text")):
                    break
            self.queue.append(STOP)
            self.wakeup.set()
            await self._reading_until(self.worker)
        finally:
            if not self.worker.done():
                self.worker.cancel()
                try:
                    await self.worker
                except BaseException:  # noqa: BLE001 - cancelled or already failing
                    pass
        await self._finish(Close.NORMAL, "stopped by the client")

    async def _reading_until(self, fut: asyncio.Future):
        """Wait for ``fut`` while still reading the socket (answering ``ping``, ignoring
        audio): uvicorn stops reading a socket whose app does not receive, and then misses
        the client's keepalive pongs and drops the connection."""
        while True:
            recv = asyncio.ensure_future(self.ws.receive())
            done, _ = await asyncio.wait({recv, fut}, return_when=asyncio.FIRST_COMPLETED)
            if recv in done:
                msg = recv.result()
                if msg["type"] == "websocket.disconnect":
                    raise _Disconnected()
                if msg.get("text") is not None:
                    try:
                        doc = json.loads(msg["text"])
                    except ValueError:
                        doc = None
                    if isinstance(doc, dict) and doc.get("type") == "ping":
                        await self._control(msg["text"])
                if fut not in done:
                    continue
            else:
                recv.cancel()
                try:
                    await recv
                except BaseException:  # noqa: BLE001 - cancelled
                    pass
            return fut.result()

    def _frame(self, data: bytes, now: float) -> None:
        self.stats.frames += 1
        size = self.dtype.itemsize
        if len(data) % size:
            raise LiveClosed(Close.MALFORMED, f"frame {self.stats.frames}: {len(data)} bytes "
                             f"is not a whole number of {self.hello.format} samples")
        n = len(data) // size
        if n > self.max_frame:
            raise LiveClosed(Close.TOO_BIG, f"frame {self.stats.frames}: {n} samples; at most "
                             f"{self.max_frame} ({MAX_FRAME_S:g} s) per frame")
        x = np.frombuffer(data, self.dtype)
        if self.dtype.kind == "i":
            x = x.astype(np.float32) / 32768.0
        elif not np.isfinite(x).all():
            raise LiveClosed(Close.MALFORMED, f"frame {self.stats.frames}: NaN or infinite "
                                              "samples")
        self.samples_in += n
        # against the time "ready" was sent, not the first frame's arrival: a server stall
        # before the first frame is read must not make a real-time client look ahead
        ahead = self.samples_in / self.conv.sample_rate - (now - self.t_ready)
        if ahead > FLOOD_SLACK_S:
            raise LiveClosed(Close.FLOOD, f"flood: the client is {ahead:.1f} s ahead of real "
                             f"time (at most {FLOOD_SLACK_S:g} s); send audio as it is captured")
        buf = np.concatenate([self.pending, x.astype(np.float32, copy=False)])
        cut = len(buf) - len(buf) % self.block
        for i in range(0, cut, self.block):
            self._enqueue(buf[i:i + self.block].copy(), now)
        self.pending = buf[cut:]

    def _enqueue(self, block: np.ndarray, now: float) -> None:
        waiting = sum(1 for item in self.queue if isinstance(item, tuple))
        if waiting >= self.max_queue:  # the server is behind: drop the oldest waiting block
            for i, item in enumerate(self.queue):
                if isinstance(item, tuple):
                    self.queue[i] = DROPPED
                    self.stats.dropped += 1
                    break
        self.queue.append((block, now))
        self.wakeup.set()

    async def _control(self, text: str | None) -> bool:
        """Handle a text message; True on ``stop``."""
        try:
            doc = json.loads(text or "")
        except ValueError:
            raise LiveClosed(Close.MALFORMED, "a text message that is not JSON") from None
        kind = doc.get("type") if isinstance(doc, dict) else None
        if kind == "ping":
            t = doc.get("t")
            await self.ws.send_text(json.dumps({"type": "pong", "t": t if isinstance(
                t, (int, float, str)) and not isinstance(t, bool) else None}))
            return False
        if kind == "stop":
            return True
        raise LiveClosed(Close.MALFORMED, f"unknown message type {json.dumps(kind)[:40]} "
                                          "(expected ping or stop)")

    async def _convert_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last_stats = time.monotonic()
        silence = np.zeros(0, np.float32)
        while True:
            while not self.queue:
                self.wakeup.clear()
                await self.wakeup.wait()
            item = self.queue.popleft()
            if item is STOP:
                return
            if item is DROPPED:
                if len(silence) != self.block:
                    silence = np.zeros(self.block, np.float32)
                y, t_in = silence, None
            else:
                block, t_in = item
                t0 = time.perf_counter()
                y = await loop.run_in_executor(self.executor, self.conv.process, block)
                self.stats.compute_ms.append(1000.0 * (time.perf_counter() - t0))
                y = np.asarray(y, dtype=np.float32).reshape(-1)
                if len(y) != self.block:
                    raise AisingerError(f"the converter returned {len(y)} samples for a block "
                                        f"of {self.block}")
            self._record(y)
            await self.ws.send_bytes(self._encode(y))
            self.stats.blocks += 1
            if t_in is not None:
                self.stats.server_ms.append(1000.0 * (time.monotonic() - t_in))
            now = time.monotonic()
            if now - last_stats >= STATS_EVERY_S:
                last_stats = now
                await self.ws.send_text(json.dumps(self._stats()))

    def _stats(self) -> dict:
        queued = sum(1 for item in self.queue if isinstance(item, tuple))
        return self.stats.message(self.block_ms, float(self.conv.latency_ms), queued,
                                  self.recorded_n / self.conv.sample_rate)

    def _encode(self, y: np.ndarray) -> bytes:
        if self.dtype.kind == "i":
            return np.clip(np.round(y * 32767.0), -32768, 32767).astype("<i2").tobytes()
        return y.astype("<f4").tobytes()

    def _record(self, y: np.ndarray) -> None:
        if not self.hello.record or self.record_full:
            return
        room = self.max_record - self.recorded_n
        if room <= 0:
            self.record_full = True
            return
        self.recorded.append(y[:room].copy())
        self.recorded_n += min(room, len(y))

    # -- the end ---------------------------------------------------------------------------
    async def _receive(self, timeout: float, why: str) -> dict:
        """The next message; also ends the wait when the converter task failed."""
        recv = asyncio.ensure_future(self.ws.receive())
        waiting = {recv}
        worker = getattr(self, "worker", None)
        if worker is not None:
            waiting.add(worker)
        done, _ = await asyncio.wait(waiting, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        if recv not in done:
            recv.cancel()
            try:
                await recv
            except BaseException:  # noqa: BLE001 - cancelled
                pass
            if worker is not None and worker in done:
                worker.result()  # raises the converter's error
                raise LiveClosed(Close.SERVER_ERROR, "the converter stopped")
            raise LiveClosed(Close.TIMEOUT, why)
        msg = recv.result()
        if msg["type"] == "websocket.disconnect":
            raise _Disconnected()
        return msg

    def _save(self) -> dict | None:
        """Save what was recorded (once); the record clients see, or None."""
        parts, self.recorded = self.recorded, []
        if not parts:
            return None
        try:
            return save_recording(self.ctx.cfg.data_dir, self.principal.name, self.hello.voice,
                                  self.voice_dir, np.concatenate(parts), self.conv.sample_rate,
                                  self.record_full)
        except Exception:  # noqa: BLE001 - the session ends anyway; the log has it
            log.exception("live session %s: recording not saved", self.sid)
            return None

    async def _finish(self, code: int | None, reason: str) -> None:
        """Say goodbye and close (``code`` None: the client is gone).  After ``stop`` the
        recording is saved first, so that ``bye`` names it; otherwise :meth:`run` saves it."""
        log.info("live session %s: %s (%s)", self.sid, reason, code)
        if code is None:
            return
        try:
            if code == Close.NORMAL:
                recording = await self._reading_until(
                    asyncio.get_running_loop().run_in_executor(None, self._save))
                bye = self._stats()
                bye.update(type="bye", recording=recording)
                await self.ws.send_text(json.dumps(bye))
            await self.ws.close(code, close_reason(reason))
        except Exception:  # noqa: BLE001 - the client may be gone already
            pass


class _Disconnected(Exception):
    """The client closed the socket."""


def recordings_dir(data_dir: Path) -> Path:
    return Path(data_dir) / RECORDINGS


def save_recording(data_dir: Path, owner: str, voice_id: str, voice_dir: Path,
                   audio: np.ndarray, sr: int, truncated: bool = False) -> dict:
    """Label (metadata + watermark + the service's audible notice) and save a live recording
    as ``live/<id>.flac`` with its ``<id>.json``; returns the record clients see."""
    rid = new_id()
    folder = recordings_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    policy = policy_for("serve", service=True)
    y, label = label_audio(audio, sr, voice_id=voice_dir.name, policy=policy)
    write_labelled(y, sr, folder / f"{rid}.flac", label, ceiling_dbtp=TRUE_PEAK_CEILING_DBTP)
    rec = {"id": rid, "owner": owner, "voice_id": voice_id, "sample_rate": sr,
           "seconds": round(len(audio) / sr, 3), "truncated": truncated,
           "created": time.time(), "explicit": policy.explicit,
           "produce_id": label.get("AIGC", {}).get("ProduceID"),
           "url": f"/api/live/recordings/{rid}"}
    write_json(folder / f"{rid}.json", rec)
    return rec


def list_recordings(data_dir: Path, owner: str | None) -> list[dict]:
    """Saved recordings, newest first (``owner`` None: everyone's)."""
    folder = recordings_dir(data_dir)
    out = []
    if folder.is_dir():
        for p in folder.glob("*.json"):
            try:
                rec = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if RECORDING_ID.match(str(rec.get("id", ""))) and \
                    (owner is None or rec.get("owner") == owner) and \
                    (folder / f"{rec['id']}.flac").is_file():
                out.append(rec)
    return sorted(out, key=lambda r: r.get("created", 0), reverse=True)


def find_recording(data_dir: Path, rid: str) -> tuple[dict, Path] | None:
    """A recording's record and file, looked up by its server-made ID (never a path)."""
    if not isinstance(rid, str) or not RECORDING_ID.match(rid):
        return None
    folder = recordings_dir(data_dir)
    for p in folder.glob("*.json") if folder.is_dir() else ():
        if p.stem == rid:
            try:
                rec = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None
            audio = folder / f"{rid}.flac"
            return (rec, audio) if audio.is_file() else None
    return None
