"""The request service against a real ``aisinger serve`` on loopback.

Queue-mechanics tests use the ``label`` job kind (the worker labels the uploaded song: a real,
quick job); tests/test_service_cover.py runs real covers with a trained tiny voice.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from service_util import (SR, Server, client, pid_alive, token, untrained_voice, upload,
                          wait_job)


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    """A 4 s tone song as WAV and FLAC, a 72 s MP3, and junk files."""
    from aisinger.io.audio import save

    d = tmp_path_factory.mktemp("songs")
    t = np.arange(int(4 * SR)) / SR
    x = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))
         ).astype(np.float32)
    out = {"wav": save(d / "a.wav", x, SR), "flac": save(d / "a.flac", x, SR)}
    out["slow"] = save(d / "slow.mp3", np.tile(x, 18), SR)         # 72 s: a longer label job
    (d / "text.mp3").write_text("not audio at all, just text\n" * 50)
    out["text"] = d / "text.mp3"
    (d / "random.wav").write_bytes(os.urandom(20000))
    out["random"] = d / "random.wav"
    return out


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """A server with one local worker running label jobs; short lease for the kill tests."""
    data = tmp_path_factory.mktemp("svc")
    untrained_voice(data / "voices", "tiny")
    untrained_voice(data / "voices", "noserve", consent_uses=("train", "convert", "cover"))
    (data / "service.json").write_text(json.dumps({
        "data_dir": str(data), "job_kind": "label", "lease_s": 3.0, "max_upload_mb": 2.0,
        "max_song_seconds": 75.0, "requeue_after_s": 3.0, "worker_nice": 0,
        "voice_import_roots": [str(data.parent / "imports")]}))
    srv = Server(data).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def alice(service):
    with client(service, token(service.data, "alice")) as c:
        yield c


@pytest.fixture(scope="module")
def song_id(alice, songs):
    r = upload(alice, songs["wav"], "tone")
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_openapi_and_auth(service, alice):
    import httpx

    spec = httpx.get(service.url + "/openapi.json").json()
    for path in ("/api/songs", "/api/voices", "/api/jobs", "/api/jobs/{job_id}",
                 "/api/jobs/{job_id}/result", "/api/queue"):
        assert path in spec["paths"], path
    assert "HTTPBearer" in json.dumps(spec["components"]["securitySchemes"])
    assert httpx.get(service.url + "/api/songs").status_code == 401
    bad = {"Authorization": "Bearer ais_" + "x" * 43}
    assert httpx.get(service.url + "/api/songs", headers=bad).status_code == 401
    assert httpx.get(service.url + "/api/songs",
                     headers={"Authorization": "Basic Zm9vOmJhcg=="}).status_code == 401
    assert alice.get("/api/me").json() == {"name": "alice", "role": "user"}
    # a worker token cannot use the client API, a user token not the worker API
    w = {"Authorization": f"Bearer {token(service.data, 'w', 'worker')}"}
    assert httpx.get(service.url + "/api/songs", headers=w).status_code == 403
    assert alice.post("/api/worker/jobs/x/claim", json={}).status_code == 403
    # tokens are stored as SHA-256 digests only
    secret = token(service.data, "bob")
    db = sqlite3.connect(service.data / "service.db")
    rows = db.execute("SELECT digest FROM tokens").fetchall()
    db.close()
    assert (hashlib.sha256(secret.encode()).hexdigest(),) in rows
    raw = (service.data / "service.db").read_bytes()
    wal = service.data / "service.db-wal"
    raw += wal.read_bytes() if wal.exists() else b""
    assert secret.encode() not in raw


def test_revoked_token_and_cli(service):
    import subprocess
    import sys

    import httpx

    out = subprocess.run([sys.executable, "-m", "aisinger", "serve", "token", "create",
                          "--data", str(service.data), "--name", "carol"],
                         capture_output=True, text=True, check=True)
    secret = out.stdout.strip()
    h = {"Authorization": f"Bearer {secret}"}
    assert httpx.get(service.url + "/api/me", headers=h).json()["name"] == "carol"
    tid = out.stderr.split()[1]
    subprocess.run([sys.executable, "-m", "aisinger", "serve", "token", "revoke", tid,
                    "--data", str(service.data)], check=True, capture_output=True)
    assert httpx.get(service.url + "/api/me", headers=h).status_code == 401


def test_upload_sniffs_content_and_enforces_limits(service, alice, songs):
    # format from the content, not from the name: a FLAC called .wav is stored as FLAC
    r = alice.post("/api/songs", params={"title": "x.wav"}, content=songs["flac"].read_bytes())
    assert r.status_code == 201 and r.json()["format"] == "flac"
    assert abs(r.json()["seconds"] - 4.0) < 0.01
    assert (service.data / "songs" / f"{r.json()['id']}.flac").is_file()
    for junk in ("text", "random"):
        r = upload(alice, songs[junk], "junk")
        assert r.status_code == 415, r.text
    big = np.random.default_rng(0).standard_normal(SR * 20).astype(np.float32) * 0.1
    from aisinger.io.audio import save

    p = save(service.data.parent / "big.wav", big, SR)    # 3.5 MB of float WAV > 2 MiB
    assert upload(alice, p, "big").status_code == 413
    assert alice.post("/api/songs", content=b"").status_code == 400
    # nothing left behind in the upload folder
    assert list((service.data / "uploads").iterdir()) == []


def test_duration_limit(service, alice, tmp_path):
    from aisinger.io.audio import save

    quiet = np.zeros(int(80 * 8000), dtype=np.float32)   # 80 s at 8 kHz FLAC: tiny file
    quiet[::100] = 0.01
    p = save(tmp_path / "long.flac", quiet, 8000)
    r = upload(alice, p, "too long")
    assert r.status_code == 413 and "limit is 75 s" in r.json()["detail"]


def test_user_strings_never_become_paths(service, alice, songs):
    before = {p.name for p in service.data.rglob("*")}
    r = upload(alice, songs["wav"], "../../../../tmp/evil\x00name.wav")
    assert r.status_code == 201
    s = r.json()
    # the title is shown as given (control characters dropped); it never becomes a path
    assert s["title"] == "../../../../tmp/evilname.wav"
    assert set(os.listdir(service.data / "songs")) >= {f"{s['id']}.wav"}
    new = {p.name for p in service.data.rglob("*")} - before
    assert new <= {f"{s['id']}.wav", "service.db-wal", "service.db-shm"}
    for bad in ("..%2F..%2Fservice.db", "..", "%2e%2e", "a" * 300):
        assert alice.get(f"/api/jobs/{bad}").status_code == 404
        assert alice.get(f"/api/songs/{bad}/audio").status_code == 404
    for voice in ("../voices", "..", "tiny/../tiny", "/etc"):
        r = alice.post("/api/jobs", json={"song_id": s["id"], "voice_id": voice})
        assert r.status_code == 404, (voice, r.text)


def _tar(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        for name, target in (links or {}).items():
            ti = tarfile.TarInfo(name)
            ti.type, ti.linkname = tarfile.SYMTYPE, target
            tf.addfile(ti)
    return buf.getvalue()


def test_voices_cards_consent_and_admin_upload(service, alice):
    import httpx

    voices = {v["id"]: v for v in alice.get("/api/voices").json()}
    assert voices["tiny"]["usable"] and voices["tiny"]["consent"]["scope"] == "commercial"
    assert voices["tiny"]["card"]["name"] == "tiny"
    assert not voices["noserve"]["usable"] and "serve" in voices["noserve"]["problem"]
    vdir = service.data / "voices" / "tiny"
    files = {f"tiny/{p.name}": p.read_bytes() for p in vdir.iterdir() if p.is_file()}
    archive = _tar(files)
    assert alice.post("/api/voices", content=archive).status_code == 403
    with client(service, token(service.data, "root", "admin")) as adm:
        r = adm.post("/api/voices", content=archive)
        assert r.status_code == 201, r.text
        new = r.json()
        assert new["id"] != "tiny" and new["usable"] and new["card"]["name"] == "tiny"
        assert (service.data / "voices" / new["id"] / "model.safetensors").is_file()
        # hostile archives
        evil = dict(files, **{"../../evil.json": b"{}"})
        assert adm.post("/api/voices", content=_tar(evil)).status_code == 400
        r = adm.post("/api/voices", content=_tar(files, links={"tiny/index.safetensors":
                                                                "/etc/passwd"}))
        assert r.status_code == 400
        no_consent = {k: v for k, v in files.items() if not k.endswith("consent.json")}
        r = adm.post("/api/voices", content=_tar(no_consent))
        assert r.status_code == 400 and "consent" in r.json()["detail"]
        assert adm.post("/api/voices", content=b"PK not a zip").status_code == 415
        # import by path: only from inside the configured roots
        assert adm.post("/api/voices/import", json={"path": str(vdir)}).status_code == 400
        imports = service.data.parent / "imports"
        shutil.copytree(vdir, imports / "copy")
        r = adm.post("/api/voices/import", json={"path": str(imports / "copy")})
        assert r.status_code == 201 and r.json()["usable"], r.text
        assert adm.post("/api/voices/import",
                        json={"path": str(imports / "copy" / ".." / "..")}).status_code == 400
        assert alice.post("/api/voices/import", json={"path": str(imports / "copy")}
                          ).status_code == 403
        assert adm.delete(f"/api/voices/{r.json()['id']}").status_code == 200
        assert not (service.data.parent / "evil.json").exists()
        assert not any(p.name.startswith(".incoming") for p in (service.data / "voices").iterdir())
        assert adm.delete(f"/api/voices/{new['id']}").status_code == 200
    r = alice.post("/api/jobs", json={"song_id": "x" * 32, "voice_id": "tiny"})
    assert r.status_code == 404
    del httpx


def test_job_lifecycle_positions_result_delete(service, alice, song_id, songs):
    from aisinger.label import detect_file

    # the consent of "noserve" does not cover the service
    r = alice.post("/api/jobs", json={"song_id": song_id, "voice_id": "noserve"})
    assert r.status_code == 403 and "serve" in r.json()["detail"]
    assert alice.post("/api/jobs", json={"song_id": song_id, "voice_id": "tiny",
                                         "format": "ogg"}).status_code == 422
    assert alice.post("/api/jobs", json={"song_id": song_id, "voice_id": "tiny",
                                         "options": {"retrieval": 2}}).status_code == 422
    slow = upload(alice, songs["slow"], "slow").json()["id"]
    ids = [alice.post("/api/jobs", json={"song_id": slow if i == 0 else song_id,
                                         "voice_id": "tiny", "format": "wav"}).json()["id"]
           for i in range(3)]
    first = wait_job(alice, ids[0], until=lambda j: j["state"] == "running")
    assert first["position"] == 0
    q = [alice.get(f"/api/jobs/{i}").json() for i in ids[1:]]
    if all(j["state"] == "queued" for j in q):
        assert [j["position"] for j in q] == [1, 2]
    live = alice.get("/api/queue").json()
    assert {j["id"] for j in live["running"] + live["waiting"] + live["recent"]} >= set(ids)
    done = [wait_job(alice, i) for i in ids]
    assert [j["state"] for j in done] == ["done"] * 3, done
    r = alice.get(done[1]["result_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    out = service.data.parent / "result.wav"
    out.write_bytes(r.content)
    d = detect_file(out, known_voices={"tiny": "tiny", "noserve": "noserve"})
    assert d.labelled and d.metadata.valid and d.watermark.present and d.voice == "tiny"
    assert done[1]["info"]["explicit"] == "voice"      # audible cue on in the service
    import soundfile as sf

    assert sf.info(str(out)).duration > 5.0           # the spoken notice was prepended
    # only the job's own name in results/
    assert sorted(p.name for p in (service.data / "results").iterdir()) == \
        sorted(f"{i}.wav" for i in ids)
    assert alice.delete(f"/api/jobs/{ids[1]}").status_code == 200
    assert alice.get(f"/api/jobs/{ids[1]}").status_code == 404
    assert not (service.data / "results" / f"{ids[1]}.wav").exists()
    with client(service, token(service.data, "mallory")) as other:
        assert other.delete(f"/api/jobs/{ids[2]}").status_code == 403
        assert other.get("/api/jobs").json() == []


def test_worker_killed_mid_job_is_retried_once(service, alice, songs):
    slow = upload(alice, songs["slow"], "slow").json()["id"]
    jid = alice.post("/api/jobs", json={"song_id": slow, "voice_id": "tiny",
                                        "format": "flac"}).json()["id"]
    j = wait_job(alice, jid, until=lambda j: j["state"] == "running" and j["stage"] == "label")
    assert j["state"] == "running", j
    pid = int(j["worker"].rsplit(":", 1)[1])
    os.kill(pid, 9)
    done = wait_job(alice, jid, timeout=120)
    assert done["state"] == "done" and done["attempts"] == 2, done
    assert done["worker"] != j["worker"]
    assert not pid_alive(pid)
    assert [p.name for p in (service.data / "results").glob(f"{jid}*")] == [f"{jid}.flac"]
    assert "worker lost" in service.log()


def test_server_killed_and_restarted_keeps_jobs(service, alice, songs, song_id):
    slow = upload(alice, songs["slow"], "slow").json()["id"]
    ids = [alice.post("/api/jobs", json={"song_id": slow if i == 0 else song_id,
                                         "voice_id": "tiny"}).json()["id"] for i in range(3)]
    j = wait_job(alice, ids[0], until=lambda j: j["state"] == "running")
    worker_pid = int(j["worker"].rsplit(":", 1)[1])
    service.stop(kill=True)
    deadline = time.monotonic() + 10
    while pid_alive(worker_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not pid_alive(worker_pid), "orphaned worker kept running"
    service.start()
    done = [wait_job(alice, i, timeout=180) for i in ids]
    assert [d["state"] for d in done] == ["done"] * 3, done
    for i in ids:
        assert [p.name for p in (service.data / "results").glob(f"{i}*")] == [f"{i}.mp3"]


def test_duplicate_messages_finish_once(service, alice, song_id):
    from aisinger.service.queue import JobQueue

    jid = alice.post("/api/jobs", json={"song_id": song_id, "voice_id": "tiny"}).json()["id"]
    q = JobQueue(f"sqlite://{service.data / 'queue.db'}")
    for _ in range(3):
        q.enqueue(jid)
    done = wait_job(alice, jid)
    assert done["state"] == "done" and done["attempts"] == 1
    time.sleep(2)  # let the duplicates reach the worker
    assert alice.get(f"/api/jobs/{jid}").json()["attempts"] == 1
    assert len(list((service.data / "results").glob(f"{jid}*"))) == 1
    assert q.pending_count() == 0


def test_claim_is_atomic_and_lost_messages_are_resent(tmp_path):
    """In process: two claims race for one job; a queued job whose message vanished."""
    from concurrent.futures import ThreadPoolExecutor

    from aisinger.service.app import create_app
    from aisinger.service.config import ServiceConfig
    from aisinger.service.queue import JobQueue

    cfg = ServiceConfig(data_dir=tmp_path, requeue_after_s=0.0, lease_s=60)
    q = JobQueue(cfg.queue_url)
    app = create_app(cfg, queue=q)
    store = app.state.store
    job = store.add_job("s", "v", "alice", {}, "mp3")
    with ThreadPoolExecutor(8) as ex:
        claims = list(ex.map(lambda i: store.claim(job["id"], f"w{i}", 60), range(8)))
    assert sum(c is not None for c in claims) == 1
    job2 = store.add_job("s", "v", "alice", {}, "mp3")
    app.state.reap_once()                     # never enqueued → enqueued
    assert q.pending_ids() == {job2["id"]}
    q.huey.flush()                            # the message is lost (e.g. a worker died)
    time.sleep(0.01)
    app.state.reap_once()
    assert q.pending_ids() == {job2["id"]}
    app.state.reap_once()                     # still pending: not sent twice
    assert q.pending_count() == 1


def test_queue_messages_are_json_not_pickle(tmp_path):
    import pickle

    from huey.registry import Message

    from aisinger.service.queue import JobQueue, json_serializer

    q = JobQueue(f"sqlite://{tmp_path / 'q.db'}")
    q.enqueue("0123abcd")
    raw = q.huey.storage.enqueued_items()[0]
    assert json.loads(raw)["message"]["args"] == ["0123abcd"]
    assert json_serializer().deserialize(raw).args == ("0123abcd",)
    evil = pickle.dumps(Message("x", "aisinger.run_job", None, 0, 0, None, ("j",), {}, None,
                                None, None, None))
    with pytest.raises(ValueError):       # a pickle in the queue is not executed, only refused
        json_serializer().deserialize(evil)
