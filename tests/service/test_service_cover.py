"""Acceptance: real covers through the service with a really trained tiny voice — over the
API, through the web page in headless Chromium, and with the worker killed mid-cover."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from service_util import (Server, browser, client, make_song, token, train_tiny_voice,
                          ui_submit_and_play, upload, wait_job)


@pytest.fixture(scope="module")
def cover_service(tmp_path_factory):
    root = tmp_path_factory.mktemp("cover-svc")
    train_tiny_voice(root)
    (root / "service.json").write_text(json.dumps({
        "data_dir": str(root), "job_kind": "cover", "lease_s": 10.0, "worker_nice": 0,
        "requeue_after_s": 5.0}))
    srv = Server(root).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def song5(tmp_path_factory):
    return make_song(tmp_path_factory.mktemp("song") / "song5.wav", seconds=5.0, seed=5)


def _labelled(path, voice="slt"):
    from aisinger.label import detect_file

    d = detect_file(path, known_voices={voice: voice})
    return d.metadata.valid and d.watermark.present and d.voice == voice


def test_cover_over_the_api(cover_service, song5, tmp_path):
    import soundfile as sf

    with client(cover_service, token(cover_service.data, "alice")) as c:
        sid = upload(c, song5, "five seconds").json()["id"]
        voices = {v["id"]: v for v in c.get("/api/voices").json()}
        assert voices["slt"]["usable"] and voices["slt"]["card"]["training"]["steps"] == 20
        jid = c.post("/api/jobs", json={"song_id": sid, "voice_id": "slt",
                                        "options": {"transpose": None, "retrieval": 0.5},
                                        "format": "mp3"}).json()["id"]
        stages = set()
        job = wait_job(c, jid, timeout=400, until=lambda j: stages.add(
            (j["stage"], j["progress"])) and False)
        assert job["state"] == "done", job
        assert len({s for s, _ in stages if s}) >= 3, stages    # progress is reported by stage
        info = job["info"]
        assert info["key_reason"] and "transpose" in info and info["label"]
        out = tmp_path / "cover.mp3"
        out.write_bytes(c.get(job["result_url"]).content)
    assert _labelled(out)
    # the 5 s song plus the audible AI notice (on by default in the service) before it
    assert sf.info(str(out)).duration > 6.0


def test_browser_submits_and_plays_a_cover(cover_service, song5, tmp_path):
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.fail("chromium / chromium-driver missing: run scripts/setup.sh")
    shots = os.environ.get("AISINGER_UI_SHOTS")
    drv = browser(tmp_path / "profile")
    try:
        r = ui_submit_and_play(drv, cover_service.url, token(cover_service.data, "viewer"),
                               song5, "slt", timeout=400,
                               shots=None if not shots else __import__("pathlib").Path(shots))
    finally:
        drv.quit()
    assert r["state"] == "done", r
    assert r["duration"] > 6.0 and r["time"] > 0.3 and not r["paused"] and not r["error"], r
    assert r["download"].endswith(".mp3") and r["download_href"].startswith("blob:")
    assert r["heading_zh"] == "AI 点歌台" and r["heading_en"] == "AI song requests"
    assert "UI song" in r["live_recent"]


@pytest.mark.slow
def test_worker_killed_mid_cover(cover_service, song5):
    with client(cover_service, token(cover_service.data, "alice")) as c:
        sid = upload(c, song5, "kill me").json()["id"]
        jid = c.post("/api/jobs", json={"song_id": sid, "voice_id": "slt",
                                        "format": "wav"}).json()["id"]
        j = wait_job(c, jid, timeout=300, until=lambda j: j["state"] == "running"
                     and j["progress"] > 0)
        os.kill(int(j["worker"].rsplit(":", 1)[1]), 9)
        t0 = time.monotonic()
        done = wait_job(c, jid, timeout=400)
    assert done["state"] == "done" and done["attempts"] == 2, done
    results = list((cover_service.data / "results").glob(f"{jid}*"))
    assert [p.name for p in results] == [f"{jid}.wav"]
    assert _labelled(results[0])
    assert time.monotonic() - t0 < 400
