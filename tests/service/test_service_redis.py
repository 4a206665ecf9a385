"""Scale-out: the queue on a Redis server (started by the test on a loopback port) and
workers that share nothing with the server but its URL and the queue ("other machines")."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from service_util import (SR, Server, client, free_port, token, untrained_voice, upload,
                          wait_job)

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="redis-server is not installed (scripts/setup.sh)")


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    port = free_port()
    d = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(d)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    r = redis.Redis(host="127.0.0.1", port=port)
    for _ in range(100):
        try:
            if r.ping():
                break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


def start_worker(url: str, queue: str, cache: Path, secret: str) -> subprocess.Popen:
    log = open(cache.with_suffix(".log"), "ab")
    p = subprocess.Popen([sys.executable, "-m", "aisinger", "serve", "worker", "--server", url,
                          "--queue", queue, "--cache", str(cache)],
                         env=dict(os.environ, AISINGER_SERVE_TOKEN=secret,
                                  AISINGER_PROGRESS="0"),
                         stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return p


def test_remote_workers_on_redis(tmp_path, redis_url):
    from aisinger.io.audio import save
    from aisinger.label import detect_file

    data = tmp_path / "server"
    untrained_voice(data / "voices", "tiny")
    (tmp_path / "server").mkdir(exist_ok=True)
    (data / "service.json").write_text(json.dumps({
        "data_dir": str(data), "job_kind": "label", "lease_s": 3.0, "workers": 0,
        "queue": redis_url, "requeue_after_s": 3.0}))
    srv = Server(data).start()
    workers = []
    try:
        secret = token(data, "machine", "worker")
        caches = [tmp_path / f"machine{i}" for i in range(2)]
        workers = [start_worker(srv.url, redis_url, c, secret) for c in caches]
        t = np.arange(int(4 * SR)) / SR
        x = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
        short = save(tmp_path / "a.wav", x, SR)
        slow = save(tmp_path / "slow.mp3", np.tile(x, 18), SR)
        with client(srv, token(data, "alice")) as c:
            sid = upload(c, short, "short").json()["id"]
            lid = upload(c, slow, "slow").json()["id"]
            first = c.post("/api/jobs", json={"song_id": lid, "voice_id": "tiny"}).json()["id"]
            ids = [first] + [c.post("/api/jobs", json={"song_id": sid, "voice_id": "tiny",
                                                       "format": "wav"}).json()["id"]
                             for _ in range(2)]
            # kill the worker that took the slow job: another machine finishes it
            j = wait_job(c, first, until=lambda j: j["state"] == "running" and
                         j["stage"] == "label", timeout=120)
            pid = int(j["worker"].rsplit(":", 1)[1])
            assert pid in {w.pid for w in workers}
            os.kill(pid, 9)
            done = [wait_job(c, i, timeout=180) for i in ids]
            assert [d["state"] for d in done] == ["done"] * len(ids), done
            assert done[0]["attempts"] == 2 and done[0]["worker"] != j["worker"]
            assert sum(d["attempts"] for d in done[1:]) == len(ids) - 1
            r = c.get(done[1]["result_url"])
            (tmp_path / "r.wav").write_bytes(r.content)
            assert detect_file(tmp_path / "r.wav").labelled
        assert not (data / "queue.db").exists()           # the queue lives in Redis
        assert not (data / "worker-cache").exists()       # no local workers
        assert sorted(p.name for p in (data / "results").iterdir()) == \
            sorted(f"{i}.{'mp3' if i == first else 'wav'}" for i in ids)
        assert [w.poll() for w in workers if w.pid == pid] == [-9]
    finally:
        for w in workers:
            if w.poll() is None:
                w.terminate()
                w.wait(timeout=20)
        srv.stop()
