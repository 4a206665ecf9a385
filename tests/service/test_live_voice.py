"""Live voice over the service (issue #18, browser half): the ``/api/live/ws`` protocol, its
bad-input closes, two clients at once, labelled recordings, and the ``/live-voice`` page in
headless Chromium with a fake microphone fed from a lab file.

The voice is a tiny nsf model really trained for a few steps on lab singing (as in
tests/voice/test_nsf_voice.py); the converter is the real :class:`aisinger.live.
StreamingConverter`.  Protocol tests run in process (FastAPI's TestClient); the browser test
runs a real ``aisinger serve``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from service_util import SR, Server, browser, sung, tiny_dataset, token

TINY_NSF = {"generator": "hifigan", "hidden": 32, "layers": 2, "kernel": 3, "latent": 32,
            "upsample_initial_channel": 32, "harmonics": 4}
VOICE = "slt"
STATIC = Path(__file__).resolve().parents[2] / "src" / "aisinger" / "service" / "static"


@pytest.fixture(scope="module")
def voices(tmp_path_factory) -> Path:
    """A voices folder: ``slt`` (tiny nsf voice, 6 steps on two short flite-slt songs) and
    ``private`` (the same voice, whose consent does not permit the service)."""
    import torch

    from aisinger.consent import save_consent, self_consent
    from aisinger.voice.train_nsf import NsfTrainConfig, train_nsf

    root = tmp_path_factory.mktemp("live-voices")
    ds = tiny_dataset(root / "dataset", n_notes=6)
    torch.set_num_threads(1)
    cfg = NsfTrainConfig(steps=6, batch_size=2, segment_s=0.3, checkpoint_every=3,
                         validate_every=1000, model=TINY_NSF, disc_width=0.0625,
                         adversarial_from=4, init=None)
    vdir = root / "voices"
    train_nsf(ds, vdir / VOICE, cfg, seed=0)
    shutil.rmtree(vdir / VOICE / "training", ignore_errors=True)
    private = vdir / "private"
    shutil.copytree(vdir / VOICE, private)
    save_consent(self_consent("Lab SLT", uses=("train", "convert")), private / "consent.json")
    return vdir


@pytest.fixture(scope="module")
def app(voices, tmp_path_factory):
    from aisinger.service.app import create_app
    from aisinger.service.config import ServiceConfig

    data = tmp_path_factory.mktemp("live-data")
    return create_app(ServiceConfig(data_dir=data, voices_dir=voices, workers=0,
                                    max_live_sessions=2))


@pytest.fixture(scope="module")
def alice(app) -> str:
    return token(app.state.config.data_dir, "alice")


@pytest.fixture(scope="module")
def tc(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def rate(tc, alice) -> int:
    voices = tc.get("/api/live/voices", headers={"Authorization": f"Bearer {alice}"}).json()
    slt = next(v for v in voices if v["id"] == VOICE)
    assert slt["usable"] and slt["sample_rate"] > 0
    private = next(v for v in voices if v["id"] == "private")
    assert not private["usable"] and "does not permit" in private["problem"]
    return slt["sample_rate"]


def _singing(rate: int, seconds: float, seed: int = 7) -> np.ndarray:
    """Lab singing (flite-rms) at ``rate``, float32 mono."""
    x = sung("flite-rms", seed, n_notes=max(4, int(seconds * 1.6)))[0]
    return _resample(x, SR, rate)[: int(seconds * rate)].astype(np.float32)


def _resample(x: np.ndarray, sr: int, rate: int) -> np.ndarray:
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(sr, rate)
    return resample_poly(x, rate // g, sr // g).astype(np.float32)


def _hello(**kw) -> str:
    doc = {"type": "hello", "voice": VOICE, "sample_rate": kw.pop("rate"), "channels": 1,
           "format": "f32", "transpose": 0}
    doc.update(kw)
    return json.dumps(doc)


def _closed(ws) -> tuple[int, str, list]:
    """Read until the server closes; (code, reason, the text messages seen)."""
    from starlette.websockets import WebSocketDisconnect

    texts = []
    while True:
        try:
            m = ws.receive()
        except WebSocketDisconnect as e:
            return e.code, e.reason, texts
        if m["type"] == "websocket.close":
            return m["code"], m.get("reason") or "", texts
        if m.get("text") is not None:
            texts.append(json.loads(m["text"]))


def _stream(ws, x: np.ndarray, frame: int, pace: float = 1.0, dtype="<f4") -> None:
    """Send ``x`` in frames of ``frame`` samples at ``pace`` x real time."""
    rate = getattr(ws, "_rate")
    t0 = time.monotonic()
    for i in range(0, len(x), frame):
        part = x[i:i + frame]
        if dtype == "<i2":
            ws.send_bytes(np.round(part * 32767).astype("<i2").tobytes())
        else:
            ws.send_bytes(part.astype("<f4").tobytes())
        ahead = (i + len(part)) / rate / pace - (time.monotonic() - t0)
        if ahead > 0:
            time.sleep(ahead)


def _ready(ws, rate: int, tok: str, **kw) -> dict:
    ws.send_text(_hello(rate=rate, token=tok, **kw))
    r = ws.receive_json()
    assert r["type"] == "ready", r
    ws._rate = r["sample_rate"]
    return r


def _drain(ws) -> tuple[list[np.ndarray], list[dict], int, str]:
    """After ``stop``: the remaining audio blocks and messages, and the close."""
    from starlette.websockets import WebSocketDisconnect

    blocks, texts = [], []
    while True:
        try:
            m = ws.receive()
        except WebSocketDisconnect as e:
            return blocks, texts, e.code, e.reason
        if m["type"] == "websocket.close":
            return blocks, texts, m["code"], m.get("reason") or ""
        if m.get("bytes") is not None:
            blocks.append(np.frombuffer(m["bytes"], "<f4"))
        else:
            texts.append(json.loads(m["text"]))


def test_round_trip_stats_and_labelled_recording(tc, alice, rate, tmp_path):
    from aisinger.label import detect_file

    x = _singing(rate, 3.0)
    with tc.websocket_connect("/api/live/ws") as ws:
        r = _ready(ws, rate, alice, record=True)
        assert r["sample_rate"] == rate and r["channels"] == 1 and r["ai_generated"] is True
        assert r["block_samples"] > 0 and r["latency_ms"] >= r["block_ms"] > 0
        # frames that do not line up with blocks: the server cuts its own blocks
        _stream(ws, x, frame=int(r["block_samples"] * 0.7) + 3)
        ws.send_text(json.dumps({"type": "ping", "t": 12.5}))
        ws.send_text(json.dumps({"type": "stop"}))
        blocks, texts, code, reason = _drain(ws)
    assert code == 1000, reason
    n_blocks = len(x) // r["block_samples"]
    assert len(blocks) == n_blocks  # one output block per complete input block, in order
    assert all(len(b) == r["block_samples"] for b in blocks)
    y = np.concatenate(blocks)
    assert np.isfinite(y).all() and np.sqrt(np.mean(y ** 2)) > 1e-3
    assert {"type": "pong", "t": 12.5} in texts
    stats = [t for t in texts if t["type"] == "stats"]
    bye = next(t for t in texts if t["type"] == "bye")
    assert bye["blocks"] == n_blocks  # (blocks dropped on a busy machine count too)
    assert bye["compute_ms"]["mean"] > 0 and bye["rtf"] > 0
    assert stats, "no periodic stats during 3 s of streaming"
    rec = bye["recording"]
    assert rec["seconds"] == pytest.approx(n_blocks * r["block_samples"] / rate, abs=1e-3)
    h = {"Authorization": f"Bearer {alice}"}
    assert rec["id"] in [x["id"] for x in tc.get("/api/live/recordings", headers=h).json()]
    got = tc.get(rec["url"], headers=h)
    assert got.status_code == 200 and got.headers["content-type"] == "audio/flac"
    path = tmp_path / "rec.flac"
    path.write_bytes(got.content)
    d = detect_file(path, known_voices={VOICE: VOICE})
    assert d.metadata.valid and d.watermark.present and d.voice == VOICE
    bob = token(tc.app.state.config.data_dir, "bob")
    assert tc.get(rec["url"], headers={"Authorization": f"Bearer {bob}"}).status_code == 403
    assert tc.get(rec["url"]).status_code == 401


def test_int16_frames(tc, alice, rate):
    x = _singing(rate, 1.0, seed=3)
    with tc.websocket_connect("/api/live/ws") as ws:
        r = _ready(ws, rate, alice, format="s16")
        _stream(ws, x, frame=r["block_samples"], dtype="<i2")
        ws.send_text(json.dumps({"type": "stop"}))
        blocks, _, code, reason = _drain(ws)  # bytes read as <f4: check byte lengths only
    assert code == 1000, reason
    assert len(blocks) == len(x) // r["block_samples"]
    assert all(b.nbytes == 2 * r["block_samples"] for b in blocks)


@pytest.mark.parametrize("hello,code,words", [
    ({"token": None}, 4401, "missing or invalid API token"),
    ({"token": "ais_nope"}, 4401, "missing or invalid API token"),
    ({"token": "WORKER"}, 4403, "cannot use the client API"),
    ({"voice": "nobody"}, 4404, "voice nobody: no such voice"),
    ({"voice": "../etc"}, 4404, "no such voice"),
    ({"voice": "private"}, 4403, "does not permit"),
    ({"sample_rate": 48000}, 4400, "streams at"),
    ({"channels": 2}, 4400, "channels 2: send mono"),
    ({"format": "f64"}, 4400, "format must be one of f32, s16"),
    ({"block_ms": 25}, 4400, "block length 25"),
    ({"transpose": "up"}, 4400, "transpose must be a number"),
    ({"extra": 1}, 4400, "unknown field 'extra'"),
    ("not json", 4400, "hello: not JSON"),
    (b"\x00\x00\x80\x3f", 4400, "expected a JSON hello"),
])
def test_bad_hello_gets_a_clear_close(tc, alice, rate, hello, code, words):
    with tc.websocket_connect("/api/live/ws") as ws:
        if isinstance(hello, bytes):
            ws.send_bytes(hello)
        elif isinstance(hello, str):
            ws.send_text(hello)
        else:
            kw = {"token": alice, **hello}
            if kw["token"] == "WORKER":
                kw["token"] = token(tc.app.state.config.data_dir, "w1", role="worker")
            if kw["token"] is None:
                del kw["token"]
            ws.send_text(_hello(rate=kw.pop("sample_rate", rate), **kw))
        got, reason, texts = _closed(ws)
    assert (got, texts) == (code, [])
    assert words in reason and len(reason.encode()) <= 123


def test_token_in_the_authorization_header(tc, alice, rate):
    with tc.websocket_connect("/api/live/ws",
                              headers={"Authorization": f"Bearer {alice}"}) as ws:
        ws.send_text(_hello(rate=rate))
        assert ws.receive_json()["type"] == "ready"
        ws.send_text(json.dumps({"type": "stop"}))
        assert _drain(ws)[2] == 1000


@pytest.mark.parametrize("send,code,words", [
    (lambda ws, r: ws.send_bytes(b"\x00" * 7), 1007, "not a whole number of f32 samples"),
    (lambda ws, r: ws.send_bytes(np.full(64, np.nan, "<f4").tobytes()), 1007, "NaN"),
    (lambda ws, r: ws.send_bytes(np.zeros(r["max_frame_samples"] + 1, "<f4").tobytes()),
     1009, "per frame"),
    (lambda ws, r: ws.send_text("{oops"), 1007, "not JSON"),
    (lambda ws, r: ws.send_text('{"type": "shout"}'), 1007, 'unknown message type "shout"'),
])
def test_malformed_messages_close_with_reason(tc, alice, rate, send, code, words):
    with tc.websocket_connect("/api/live/ws") as ws:
        r = _ready(ws, rate, alice)
        send(ws, r)
        got, reason, _ = _closed(ws)
    assert got == code and words in reason


def test_flood_is_closed_while_another_client_keeps_streaming(tc, alice, rate):
    """Two clients: B floods (10 s of audio at once) and is closed with 4429; A, streaming
    in real time all along, gets every block back and stops normally."""
    import threading

    x = _singing(rate, 3.0, seed=11)
    result = {}
    with tc.websocket_connect("/api/live/ws") as a:
        ra = _ready(a, rate, alice)

        def flood():
            with tc.websocket_connect("/api/live/ws") as b:
                rb = _ready(b, rate, alice)
                chunk = np.zeros(rb["max_frame_samples"], "<f4").tobytes()
                for _ in range(10):
                    b.send_bytes(chunk)
                result["b"] = _closed(b)[:2]

        t = threading.Thread(target=flood)
        t.start()
        _stream(a, x, frame=ra["block_samples"])
        t.join(30)
        a.send_text(json.dumps({"type": "stop"}))
        blocks, texts, code, reason = _drain(a)
    assert result["b"][0] == 4429 and "ahead of real time" in result["b"][1]
    assert code == 1000, reason
    assert len(blocks) == len(x) // ra["block_samples"]
    assert next(t for t in texts if t["type"] == "bye")["blocks"] == len(blocks)


def test_message_flood_is_closed(tc, alice, rate, monkeypatch):
    """More messages in a second than the limit (lowered to 20 here: the limit counts
    messages as the server reads them, and a busy test machine may read fewer than 200/s)."""
    import aisinger.service.live as live

    monkeypatch.setattr(live, "MAX_MESSAGES_PER_S", 20)
    with tc.websocket_connect("/api/live/ws") as ws:
        _ready(ws, rate, alice)
        for i in range(100):
            ws.send_text(json.dumps({"type": "ping", "t": i}))
        got, reason, _ = _closed(ws)
    assert got == 4429 and "messages in one second" in reason


def test_vanished_client_frees_its_slot_and_keeps_its_recording(tc, alice, rate):
    """The session cap is 2: a third client is told to come back later; a client that goes
    away mid-stream (no stop) frees its slot at once, and what it recorded is saved."""
    h = {"Authorization": f"Bearer {alice}"}
    before = {r["id"] for r in tc.get("/api/live/recordings", headers=h).json()}
    x = _singing(rate, 1.5, seed=5)
    with tc.websocket_connect("/api/live/ws") as a, tc.websocket_connect("/api/live/ws") as b:
        ra = _ready(a, rate, alice, record=True)
        _ready(b, rate, alice)
        with tc.websocket_connect("/api/live/ws") as c:
            c.send_text(_hello(rate=rate, token=alice))
            code, reason, _ = _closed(c)
        assert code == 1013 and "try again later" in reason
        _stream(a, x, frame=ra["block_samples"])
        time.sleep(0.5)  # let the last blocks come back
    # a and b went away without "stop"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        new = [r for r in tc.get("/api/live/recordings", headers=h).json()
               if r["id"] not in before]
        if new:
            break
        time.sleep(0.2)
    assert new and new[0]["seconds"] > 0  # what was converted before it left
    assert tc.get(new[0]["url"], headers=h).status_code == 200
    with tc.websocket_connect("/api/live/ws") as d:  # both slots are free again
        _ready(d, rate, alice)
        d.send_text(json.dumps({"type": "stop"}))
        assert _drain(d)[2] == 1000


def test_silent_client_and_missing_hello_time_out(tc, alice, rate, monkeypatch):
    import aisinger.service.live as live

    monkeypatch.setattr(live, "IDLE_TIMEOUT_S", 0.5)
    monkeypatch.setattr(live, "HELLO_TIMEOUT_S", 0.5)
    with tc.websocket_connect("/api/live/ws") as ws:
        _ready(ws, rate, alice)
        ws.send_bytes(np.zeros(100, "<f4").tobytes())
        code, reason, _ = _closed(ws)
    assert code == 4408 and "stopped sending" in reason
    with tc.websocket_connect("/api/live/ws") as ws:
        code, reason, _ = _closed(ws)
    assert code == 4408 and "no hello" in reason


def test_server_behind_drops_oldest_blocks_but_answers_each(app, tc, alice, rate):
    """A converter slower than real time (the real one, slowed down): waiting blocks beyond
    the queue are dropped and answered with silence, so every block still gets one answer
    and the delay stays bounded."""
    from aisinger.live import StreamingConverter

    class Slow:
        def __init__(self, voice_dir, **kw):
            self.conv = StreamingConverter(voice_dir, **kw)
            self.sample_rate, self.block_samples = self.conv.sample_rate, self.conv.block_samples
            self.latency_ms = self.conv.latency_ms

        def process(self, block):
            time.sleep(3 * self.block_samples / self.sample_rate)
            return self.conv.process(block)

    app.state.live_factory = Slow
    try:
        x = _singing(rate, 2.5, seed=2)
        with tc.websocket_connect("/api/live/ws") as ws:
            r = _ready(ws, rate, alice)
            _stream(ws, x, frame=r["block_samples"])
            ws.send_text(json.dumps({"type": "stop"}))
            blocks, texts, code, reason = _drain(ws)
    finally:
        del app.state.live_factory
    bye = next(t for t in texts if t["type"] == "bye")
    assert code == 1000, reason
    assert len(blocks) == len(x) // r["block_samples"] == bye["blocks"]
    assert bye["dropped"] > 0
    silent = sum(1 for b in blocks if not b.any())
    assert silent == bye["dropped"]


def test_page_is_linked_labelled_and_translated(tc):
    page = tc.get("/live-voice")
    assert page.status_code == 200 and 'id="ai-notice"' in page.text
    for path in ("/", "/live"):
        assert 'href="/live-voice"' in tc.get(path).text
    i18n = (STATIC / "i18n.js").read_text(encoding="utf-8")
    zh, en = i18n.split("\n  en: {")
    keys = set(re.findall(r'data-i18n="([a-z_]+)"', page.text))
    keys |= set(re.findall(r'\bt\("([a-z_]+)"\)', (STATIC / "live-voice.js").read_text()))
    keys |= {f"lv_st_{s}" for s in ("idle", "connecting", "streaming", "finishing",
                                     "stopped", "error")}
    for lang, block in (("zh", zh), ("en", en)):
        missing = [k for k in keys if not re.search(rf"\b{k}:", block)]
        assert not missing, f"{lang} strings missing: {missing}"


def _fake_mic_wav(path: Path, seconds: float = 8.0) -> tuple[Path, np.ndarray]:
    """Lab singing as the fake capture device's file (16-bit, 48 kHz mono)."""
    import soundfile as sf

    x = _resample(sung("flite-rms", 21, n_notes=int(seconds * 1.6))[0], SR, 48000)
    x = (0.8 * x / max(1e-6, np.abs(x).max()))[: int(seconds * 48000)]
    sf.write(path, x, 48000, subtype="PCM_16")
    return path, x


def test_browser_streams_the_microphone_and_plays_the_converted_voice(voices, tmp_path):
    """Headless Chromium, fake microphone fed from a lab WAV: the page streams it, gets the
    converted voice back (not silent, not the input), shows the latency, records, and the
    recording is labelled."""
    import httpx
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from aisinger.label import detect_file

    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.fail("chromium / chromium-driver missing: run scripts/setup.sh --test")
    shots = Path(os.environ["AISINGER_UI_SHOTS"]) if os.environ.get("AISINGER_UI_SHOTS") else None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    data = tmp_path / "srv"
    data.mkdir()
    secret = token(data, "singer")
    server = Server(data, "--workers", "0", "--voices", str(voices)).start(timeout=300)
    wav, _ = _fake_mic_wav(tmp_path / "mic.wav")
    drv = browser(tmp_path / "profile", extra=(
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}"))
    try:
        drv.get(server.url + "/live-voice")
        assert drv.find_element(By.ID, "ai-notice").is_displayed()
        drv.find_element(By.ID, "token").send_keys(secret)
        drv.find_element(By.ID, "save-token").click()
        wait = WebDriverWait(drv, 60, poll_frequency=0.2)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f"#voice option[value='{VOICE}']"))
        drv.find_element(By.ID, "record").click()
        drv.find_element(By.ID, "start").click()
        slow = WebDriverWait(drv, 300, poll_frequency=0.5)  # a busy machine loads slowly
        slow.until(lambda d: d.execute_script("return window.liveVoice.state") in
                   ("streaming", "error"))
        assert drv.execute_script("return window.liveVoice.state") == "streaming", \
            drv.find_element(By.ID, "lv-message").text
        assert drv.find_element(By.ID, "lv-live").is_displayed()
        slow.until(
            lambda d: d.execute_script("return window.liveVoice.tapOutN") >=
            5 * d.execute_script("return window.liveVoice.ready.sample_rate"))
        wait.until(lambda d: re.search(r"\d+ ms", d.find_element(By.ID, "lat-total").text))
        shown = {k: drv.find_element(By.ID, k).text for k in
                 ("lat-algo", "lat-rtt", "lat-total", "compute")}
        lat = drv.execute_script("return window.liveVoice.latency")
        ready = drv.execute_script("return window.liveVoice.ready")
        x = np.array(drv.execute_script("return window.liveVoice.tapped('input')"), np.float32)
        y = np.array(drv.execute_script("return window.liveVoice.tapped('output')"), np.float32)
        seen = drv.execute_script("return {stats: window.liveVoice.stats, "
                                  "player: window.liveVoice.player}")
        if shots:
            drv.save_screenshot(str(shots / "live-voice-zh.png"))
            drv.find_element(By.ID, "lang").click()
            drv.save_screenshot(str(shots / "live-voice-en.png"))
        drv.find_element(By.ID, "stop").click()
        # the server converts what is queued and labels the recording before "bye"
        slow.until(
            lambda d: d.execute_script("return window.liveVoice.state") in ("stopped", "error"))
        close = drv.execute_script("return window.liveVoice.close")
        rec = drv.execute_script("return window.liveVoice.recording")
        assert close["code"] == 1000 and rec, (close, rec, server.log()[-2000:])
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#recordings li button.download"))
        got = httpx.get(server.url + rec["url"], headers={"Authorization": f"Bearer {secret}"})
    finally:
        drv.quit()
        server.stop()
    assert close["code"] == 1000, close
    # the fake microphone really sang, and what came back is converted audio
    n = min(len(x), len(y))
    assert n >= 4 * ready["sample_rate"]
    rms_in, rms_out = float(np.sqrt(np.mean(x ** 2))), float(np.sqrt(np.mean(y[:n] ** 2)))
    if shots:
        (shots / "live-voice.json").write_text(json.dumps(
            {"latency": lat, "shown": shown, "rms_in": rms_in, "rms_out": rms_out, **seen},
            indent=1))
    assert rms_in > 0.01, rms_in
    assert rms_out > 1e-3, (rms_out, seen)  # -60 dBFS: not silence
    xc = np.abs(np.fft.irfft(np.fft.rfft(x[:n], 2 * n) * np.conj(np.fft.rfft(y[:n], 2 * n))))
    assert xc.max() / (np.linalg.norm(x[:n]) * np.linalg.norm(y[:n])) < 0.9  # not the input
    # latency shown: algorithmic from the server, round trip measured by the page
    assert lat["algorithmic"] == ready["latency_ms"] and lat["roundTrip"] > 0
    assert lat["total"] >= lat["algorithmic"] + lat["roundTrip"]
    assert f"{round(ready['latency_ms'])} ms" in shown["lat-algo"]
    assert re.search(r"\d+(\.\d)? / \d+(\.\d)? ms", shown["compute"]), shown
    # the recording: labelled FLAC, downloadable with the token
    assert rec and rec["seconds"] > 3
    assert got.status_code == 200
    (tmp_path / "rec.flac").write_bytes(got.content)
    d = detect_file(tmp_path / "rec.flac", known_voices={VOICE: VOICE})
    assert d.metadata.valid and d.watermark.present and d.voice == VOICE
