"""The FastAPI application: the HTTP API, the web UI and the reaper.

``create_app(config)`` builds everything from the config (no module-level state).  Clients
authenticate with ``Authorization: Bearer <token>``; roles: ``user`` (songs, jobs),
``admin`` (also voices, everyone's jobs), ``worker`` (the /api/worker endpoints only).
Uploads are raw request bodies (``application/octet-stream``) streamed to disk with a hard
size limit; see :mod:`aisinger.service.media` for what is accepted.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Literal, Optional

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from aisinger import __version__
from aisinger.errors import AisingerError
from aisinger.service.config import ServiceConfig
from aisinger.service.media import (MEDIA_TYPES, RESULT_FORMATS, UploadError, check_voice,
                                    clean_title, extract_voice, list_voices, resolve_voice,
                                    scrub_paths, sniff_song, voice_archive, voice_digest)
from aisinger.service.store import Principal, Store, new_id

log = logging.getLogger("aisinger.service")
STATIC = Path(__file__).with_name("static")
CONSENT_SCOPE = "non-commercial"
"""The scope a voice's consent must cover for cover + serve (a public request service)."""
OCTET = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}


# ---------------------------------------------------------------------------------- models


class CoverOptionsIn(BaseModel):
    """Cover options (unset fields take aisinger.pipelines.cover's defaults)."""

    model_config = ConfigDict(extra="forbid")
    transpose: Optional[float] = Field(None, ge=-24, le=24,
                                       description="semitones; null = automatic key")
    key_shift: Optional[Literal["octave", "semitone"]] = Field(
        None, description="automatic key: shift by whole octaves or by semitones")
    retrieval: Optional[float] = Field(None, ge=0, le=1)
    protect: Optional[float] = Field(None, ge=0, le=1)
    f0_method: Optional[Literal["fcpe", "crepe-tiny", "dsp"]] = None
    explicit_label: Optional[Literal["voice", "rhythm"]] = Field(
        None, description="audible AI notice (always on in the service): spoken or rhythm cue")


class JobIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    song_id: str = Field(..., max_length=64)
    voice_id: str = Field(..., max_length=64)
    options: CoverOptionsIn = Field(default_factory=CoverOptionsIn)
    format: Literal["wav", "flac", "mp3"] = "mp3"


class ClaimIn(BaseModel):
    worker: str = Field("worker", max_length=120)


class HeartbeatIn(BaseModel):
    lease: str = Field(..., max_length=64)
    stage: Optional[str] = Field(None, max_length=40)
    progress: Optional[float] = Field(None, ge=0, le=1)


class FailIn(BaseModel):
    lease: str = Field(..., max_length=64)
    message: str = Field("error", max_length=500)
    retry: bool = False


class ImportIn(BaseModel):
    path: str = Field(..., max_length=1000)


# ----------------------------------------------------------------------------------- app


def _song_out(s: dict) -> dict:
    return {k: s[k] for k in ("id", "title", "owner", "format", "seconds", "sr", "channels",
                              "bytes", "created")}


def create_app(config: ServiceConfig, queue=None) -> FastAPI:
    """The service app.  ``queue``: a :class:`~aisinger.service.queue.JobQueue` (default: the
    one the config names)."""
    from aisinger.service.queue import JobQueue

    cfg = config
    for d in ("songs", "results", "uploads"):
        (cfg.data_dir / d).mkdir(parents=True, exist_ok=True)
    for stale in (cfg.data_dir / "uploads").iterdir():  # left by a crash mid-upload
        stale.unlink(missing_ok=True)
    cfg.voices_dir.mkdir(parents=True, exist_ok=True)
    store = Store(cfg.db_path)
    jq = queue or JobQueue(cfg.queue_url)
    stop = threading.Event()
    enqueue_lock = threading.Lock()

    def enqueue(job_id: str) -> None:
        with enqueue_lock:
            jq.enqueue(job_id)
        store.mark_enqueued(job_id)

    def reap_once() -> None:
        again, dead = store.requeue_expired(cfg.max_attempts)
        for jid in again:
            log.warning("job %s: worker lost (lease expired); queued again", jid)
        for jid in dead:
            log.error("job %s: failed, worker lost %d times", jid, cfg.max_attempts)
        now = time.time()
        stale = store.to_enqueue(now - cfg.requeue_after_s)
        if not stale:
            return
        # A message wakes a worker, which claims the oldest queued job (whatever the message
        # names), so what matters is that there are as many messages as queued jobs.
        missing = None
        for jid, enqueued_at in stale:
            if enqueued_at is None:
                enqueue(jid)
                continue
            if missing is None:
                missing = store.queued_count() - jq.pending_count()
            if missing <= 0:
                store.mark_enqueued(jid)  # enough messages are waiting in the engine: fine
                continue
            log.warning("job %s: a queue message is gone; sent again", jid)
            enqueue(jid)
            missing -= 1

    def reaper() -> None:
        while not stop.wait(1.0):
            try:
                reap_once()
            except Exception:  # noqa: BLE001 - keep reaping (e.g. Redis briefly down)
                log.exception("reaper")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        t = threading.Thread(target=reaper, name="aisinger-reaper", daemon=True)
        t.start()
        yield
        stop.set()
        t.join(timeout=5)

    app = FastAPI(title="aisinger request service", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None,
                  description="Song-request service of aisinger: upload songs, pick a voice, "
                              "queue covers, follow progress, download labelled results. "
                              "See docs/service.md.")
    app.state.config, app.state.store, app.state.queue = cfg, store, jq
    app.state.reap_once = reap_once
    bearer = HTTPBearer(auto_error=False)
    # Token checks and status reads are single indexed SQLite reads (well under 1 ms): they run
    # on the event loop, skipping the thread-pool hop that dominates their latency under load.

    async def principal(cred: Optional[HTTPAuthorizationCredentials] = Depends(bearer)
                        ) -> Principal:
        p = store.authenticate(cred.credentials if cred else None)
        if p is None:
            raise HTTPException(401, "missing or invalid API token",
                                headers={"WWW-Authenticate": "Bearer"})
        return p

    async def user(p: Principal = Depends(principal)) -> Principal:
        if p.role not in ("user", "admin"):
            raise HTTPException(403, "this token cannot use the client API")
        return p

    async def admin(p: Principal = Depends(principal)) -> Principal:
        if p.role != "admin":
            raise HTTPException(403, "admin token required")
        return p

    async def worker(p: Principal = Depends(principal)) -> Principal:
        if p.role != "worker":
            raise HTTPException(403, "worker token required")
        return p

    @app.exception_handler(UploadError)
    async def _upload_error(request: Request, exc: UploadError):
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    def public(message: str, names: Optional[dict] = None) -> str:
        """A message without this server's file paths (users see names, not folders)."""
        roots = {cfg.data_dir, cfg.data_dir.resolve(), cfg.voices_dir, cfg.voices_dir.resolve()}
        return scrub_paths(message, names or {}, tuple(roots))

    @app.exception_handler(AisingerError)
    async def _aisinger_error(request: Request, exc: AisingerError):
        return JSONResponse({"detail": public(str(exc))}, status_code=400)

    async def receive_upload(request: Request, limit: int, what: str) -> Path:
        """Stream the request body to ``uploads/<new id>`` (413 over ``limit`` bytes)."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise UploadError(f"{what}: {int(declared)} bytes; the limit is {limit} bytes", 413)
        tmp = cfg.data_dir / "uploads" / new_id()
        n = 0
        try:
            with open(tmp, "wb") as f:
                async for block in request.stream():
                    n += len(block)
                    if n > limit:
                        raise UploadError(f"{what}: more than the limit of {limit} bytes", 413)
                    f.write(block)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if n == 0:
            tmp.unlink(missing_ok=True)
            raise UploadError(f"{what}: empty body (send the file as the request body)", 400)
        return tmp

    def job_out(j: dict) -> dict:
        song = store.get_song(j["song_id"])
        out = {k: j.get(k) for k in ("id", "song_id", "voice_id", "owner", "format", "state",
                                     "worker", "stage", "progress", "position", "attempts",
                                     "created", "started", "finished", "error")}
        out["song_title"] = song["title"] if song else None
        out["options"] = json.loads(j["options"])
        out["info"] = json.loads(j["info"]) if j.get("info") else None
        out["result_url"] = f"/api/jobs/{j['id']}/result" if j["state"] == "done" else None
        return out

    def get_job_or_404(job_id: str) -> dict:
        j = store.get_job(job_id) if len(job_id) <= 64 else None
        if j is None or j["state"] == "deleted":
            raise HTTPException(404, f"job {job_id[:64]}: no such job")
        return j

    # ------------------------------------------------------------------------- general

    @app.get("/api/health", tags=["general"])
    def health() -> dict:
        """Liveness, version, queue engine and job counts (no token needed)."""
        return {"ok": True, "version": __version__,
                "queue": "sqlite" if cfg.queue == "sqlite" else "redis",
                "jobs": store.counts()}

    @app.get("/api/me", tags=["general"])
    def me(p: Principal = Depends(principal)) -> dict:
        return {"name": p.name, "role": p.role}

    # --------------------------------------------------------------------------- songs

    @app.post("/api/songs", tags=["songs"], status_code=201, openapi_extra=OCTET)
    async def upload_song(request: Request, title: Optional[str] = Query(None, max_length=200),
                          p: Principal = Depends(user)) -> dict:
        """Upload a song as the raw request body (WAV, FLAC, MP3, OGG or M4A, recognised by
        content; size and duration limits apply).  ``title`` is only displayed."""
        limit = int(cfg.max_upload_mb * 2**20)
        tmp = await receive_upload(request, limit, "song")
        try:
            ext, i = await run_in_threadpool(sniff_song, tmp, cfg.max_song_seconds,
                                             clean_title(title, "song"))
            sid = new_id()
            final = cfg.data_dir / "songs" / f"{sid}{ext}"
            from aisinger.io.fileio import sha256_file

            digest = sha256_file(tmp)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        song = store.add_song({"id": sid, "title": clean_title(title, f"song {sid[:6]}"),
                               "owner": p.name, "file": final.name, "format": ext[1:],
                               "seconds": round(i.duration, 3), "sr": i.sr,
                               "channels": i.channels, "bytes": final.stat().st_size,
                               "sha256": digest, "created": time.time()})
        return _song_out(song)

    @app.get("/api/songs", tags=["songs"])
    def songs(p: Principal = Depends(user)) -> list[dict]:
        """The song library (shared by everyone on this server)."""
        return [_song_out(s) for s in store.list_songs()]

    def song_or_404(song_id: str) -> dict:
        s = store.get_song(song_id) if len(song_id) <= 64 else None
        if s is None:
            raise HTTPException(404, f"song {song_id[:64]}: no such song")
        return s

    @app.get("/api/songs/{song_id}", tags=["songs"])
    def song(song_id: str, p: Principal = Depends(user)) -> dict:
        return _song_out(song_or_404(song_id))

    @app.get("/api/songs/{song_id}/audio", tags=["songs"])
    def song_audio(song_id: str, p: Principal = Depends(user)):
        s = song_or_404(song_id)
        path = cfg.data_dir / "songs" / s["file"]
        return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix, "audio/wav"))

    @app.delete("/api/songs/{song_id}", tags=["songs"])
    def delete_song(song_id: str, p: Principal = Depends(user)) -> dict:
        s = song_or_404(song_id)
        if s["owner"] != p.name and not p.is_admin:
            raise HTTPException(403, "only the uploader or an admin can delete a song")
        busy = [j for j in store.list_jobs(states=("queued", "running"))
                if j["song_id"] == song_id]
        if busy:
            raise HTTPException(409, f"song {song_id}: {len(busy)} job(s) still use it")
        store.delete_song(song_id)
        (cfg.data_dir / "songs" / s["file"]).unlink(missing_ok=True)
        return {"deleted": song_id}

    # -------------------------------------------------------------------------- voices

    @app.get("/api/voices", tags=["voices"])
    def voices(p: Principal = Depends(user)) -> list[dict]:
        """Voices with their model cards and consent scope; ``usable`` says whether the
        consent covers covers in this (public, non-commercial) service."""
        return list_voices(cfg.voices_dir, CONSENT_SCOPE)

    def install_voice(staged: Path) -> dict:
        try:
            check_voice(staged, CONSENT_SCOPE)
        except AisingerError as err:
            shutil.rmtree(staged, ignore_errors=True)
            raise UploadError(public(str(err), {staged: "voice", staged.resolve(): "voice"}),
                              400) from None
        final = cfg.voices_dir / f"v{new_id()[:12]}"
        os.replace(staged, final)
        return next(v for v in list_voices(cfg.voices_dir, CONSENT_SCOPE)
                    if v["id"] == final.name)

    @app.post("/api/voices", tags=["voices"], status_code=201, openapi_extra=OCTET)
    async def upload_voice(request: Request, p: Principal = Depends(admin)) -> dict:
        """Admin: add a voice from a tar/zip archive of a voice folder (raw request body)."""
        tmp = await receive_upload(request, int(cfg.max_voice_archive_mb * 2**20), "voice")
        staged = cfg.voices_dir / f".incoming-{new_id()}"
        try:
            await run_in_threadpool(extract_voice, tmp, staged,
                                    int(cfg.max_voice_archive_mb * 2**20) * 4)
            return await run_in_threadpool(install_voice, staged)
        finally:
            tmp.unlink(missing_ok=True)
            shutil.rmtree(staged, ignore_errors=True)

    @app.post("/api/voices/import", tags=["voices"], status_code=201)
    def import_voice(body: ImportIn, p: Principal = Depends(admin)) -> dict:
        """Admin: copy a voice folder that is already on the server, from inside one of the
        configured ``voice_import_roots`` (off when none are configured)."""
        roots = [Path(r).resolve() for r in cfg.voice_import_roots]
        if not roots:
            raise HTTPException(403, "import by path is off (no voice_import_roots configured);"
                                     " upload an archive instead")
        src = Path(body.path).resolve()
        if not any(src == r or r in src.parents for r in roots) or not src.is_dir():
            raise HTTPException(400, "path is not a folder inside the voice import roots")
        staged = cfg.voices_dir / f".incoming-{new_id()}"
        try:
            from aisinger.service.media import CONSENT_AUDIO, VOICE_FILES

            staged.mkdir()
            for f in src.iterdir():
                if f.is_file() and not f.is_symlink() and (f.name in VOICE_FILES or
                                                           CONSENT_AUDIO.match(f.name)):
                    shutil.copyfile(f, staged / f.name)
            return install_voice(staged)
        finally:
            shutil.rmtree(staged, ignore_errors=True)

    @app.delete("/api/voices/{voice_id}", tags=["voices"])
    def delete_voice(voice_id: str, p: Principal = Depends(admin)) -> dict:
        d = resolve_voice(cfg.voices_dir, voice_id)
        shutil.rmtree(d)
        return {"deleted": voice_id}

    # ---------------------------------------------------------------------------- jobs

    @app.post("/api/jobs", tags=["jobs"], status_code=201)
    def submit(body: JobIn, p: Principal = Depends(user)) -> dict:
        """Queue a cover of a library song in a voice."""
        song_or_404(body.song_id)
        vdir = resolve_voice(cfg.voices_dir, body.voice_id)
        from aisinger.consent import check_scope, load_consent

        try:
            record = load_consent(vdir / "consent.json")
            for use in ("cover", "serve"):
                check_scope(record, f"{use}:{CONSENT_SCOPE}")
        except AisingerError as err:
            why = public(str(err), {vdir: "voice", vdir.resolve(): "voice"})
            raise HTTPException(403, f"voice {body.voice_id}: {why}") from None
        opts = body.options.model_dump(exclude_none=True)
        j = store.add_job(body.song_id, body.voice_id, p.name, opts, body.format)
        try:
            enqueue(j["id"])
        except Exception:  # noqa: BLE001 - engine down: the reaper enqueues it later
            log.exception("enqueue %s", j["id"])
        return job_out(store.get_job(j["id"]))

    @app.get("/api/jobs", tags=["jobs"])
    def jobs(p: Principal = Depends(user), limit: int = Query(100, ge=1, le=1000)) -> list:
        """Your jobs (an admin's: everyone's), newest first."""
        rows = store.list_jobs(owner=None if p.is_admin else p.name, limit=limit,
                               states=("queued", "running", "done", "failed"))
        return [job_out(j) for j in rows]

    @app.get("/api/jobs/{job_id}", tags=["jobs"])
    async def job(job_id: str, p: Principal = Depends(user)) -> dict:
        """State, stage, progress (0–1) and queue position (1 = next; 0 = running)."""
        return job_out(get_job_or_404(job_id))

    @app.get("/api/jobs/{job_id}/result", tags=["jobs"])
    def result(job_id: str, p: Principal = Depends(user)):
        j = get_job_or_404(job_id)
        if j["state"] != "done" or not j["result"]:
            raise HTTPException(409, f"job {job_id}: no result yet (state {j['state']})")
        path = cfg.data_dir / "results" / j["result"]
        return FileResponse(path, media_type=RESULT_FORMATS[j["format"]],
                            filename=f"aisinger-{job_id[:12]}.{j['format']}")

    @app.delete("/api/jobs/{job_id}", tags=["jobs"])
    def delete_job(job_id: str, p: Principal = Depends(user)) -> dict:
        """Cancel (queued/running) or delete (finished) a job and its result."""
        j = get_job_or_404(job_id)
        if j["owner"] != p.name and not p.is_admin:
            raise HTTPException(403, "only the requester or an admin can delete a job")
        store.delete_job(job_id)
        if j["result"]:
            (cfg.data_dir / "results" / j["result"]).unlink(missing_ok=True)
        return {"deleted": job_id}

    @app.get("/api/queue", tags=["jobs"])
    def queue_view(p: Principal = Depends(user)) -> dict:
        """The request queue as a stream host shows it: running, waiting, recently done."""
        running = store.list_jobs(states=("running",), limit=50)
        waiting = store.list_jobs(states=("queued",), limit=500)
        done = store.list_jobs(states=("done", "failed"), limit=10)
        voice_names = {v["id"]: v["name"] for v in list_voices(cfg.voices_dir, CONSENT_SCOPE)}

        def brief(j: dict) -> dict:
            o = job_out(j)
            o["voice_name"] = voice_names.get(j["voice_id"], j["voice_id"])
            return {k: o[k] for k in ("id", "song_title", "voice_name", "owner", "state",
                                      "stage", "progress", "position", "result_url")}

        return {"running": [brief(j) for j in reversed(running)],
                "waiting": [brief(j) for j in sorted(waiting, key=lambda j: j["position"])],
                "recent": [brief(j) for j in done], "counts": store.counts()}

    # -------------------------------------------------------------------------- worker

    @app.post("/api/worker/jobs/{job_id}/claim", tags=["worker"])
    def claim(job_id: str, body: ClaimIn, p: Principal = Depends(worker)) -> dict:
        """Take a job: 200 with a lease, or 409 if it is not claimable (done, running with a
        live lease, deleted)."""
        j = store.claim(job_id, body.worker, cfg.lease_s) if len(job_id) <= 64 else None
        if j is None:
            raise HTTPException(409, "job is not claimable")
        return claimed(j)

    def claimed(j: dict) -> dict:
        job_id = j["id"]
        s = store.get_song(j["song_id"])
        try:
            vdir = resolve_voice(cfg.voices_dir, j["voice_id"])
        except UploadError:
            vdir = None
        if s is None or vdir is None:
            store.fail(job_id, j["lease"], "song or voice was deleted", retry=False)
            raise HTTPException(409, "song or voice no longer exists")
        return {"id": j["id"], "lease": j["lease"], "lease_s": cfg.lease_s,
                "attempts": j["attempts"], "format": j["format"],
                "options": json.loads(j["options"]), "job_kind": cfg.job_kind,
                "song": {"id": s["id"], "ext": Path(s["file"]).suffix},
                "voice": {"id": vdir.name, "digest": voice_digest(vdir)}}

    @app.post("/api/worker/claim", tags=["worker"])
    def claim_next(body: ClaimIn, p: Principal = Depends(worker)) -> dict:
        """Take the oldest queued job (what a queue message means: work is waiting): 200 with
        a lease, or 409 when nothing is queued (a duplicate message)."""
        while True:
            j = store.claim_next(body.worker, cfg.lease_s)
            if j is None:
                raise HTTPException(409, "no job is queued")
            try:
                return claimed(j)
            except HTTPException:
                continue  # its song or voice is gone (job failed): take the next one

    @app.post("/api/worker/jobs/{job_id}/heartbeat", tags=["worker"])
    def heartbeat(job_id: str, body: HeartbeatIn, p: Principal = Depends(worker)) -> dict:
        if not store.heartbeat(job_id, body.lease, cfg.lease_s, body.stage, body.progress):
            raise HTTPException(409, "lease lost")
        return {"ok": True}

    @app.post("/api/worker/jobs/{job_id}/fail", tags=["worker"])
    def fail(job_id: str, body: FailIn, p: Principal = Depends(worker)) -> dict:
        state = store.fail(job_id, body.lease, body.message, body.retry, cfg.max_attempts)
        if state is None:
            raise HTTPException(409, "lease lost")
        return {"state": state}

    @app.put("/api/worker/jobs/{job_id}/result", tags=["worker"], openapi_extra=OCTET)
    async def put_result(job_id: str, request: Request, lease: str = Query(..., max_length=64),
                         p: Principal = Depends(worker)) -> dict:
        """Deliver a result: written to ``results/<job id>.<format>`` atomically, then the
        job is marked done in one transaction (only with the current lease)."""
        j = store.lease_holder(job_id, lease)
        if j is None:
            raise HTTPException(409, "lease lost")
        try:
            info = json.loads(base64.urlsafe_b64decode(
                request.headers.get("x-aisinger-info", "") or "e30="))
        except ValueError:
            info = {}
        tmp = await receive_upload(request, int(cfg.max_result_mb * 2**20), "result")
        final = cfg.data_dir / "results" / f"{job_id}.{j['format']}"
        try:
            from aisinger.io.audio import info as audio_info
            from aisinger.io.fileio import sha256_file

            probe = tmp.with_name(tmp.name + "." + j["format"])
            os.replace(tmp, probe)
            await run_in_threadpool(audio_info, probe)
            digest = await run_in_threadpool(sha256_file, probe)
            if store.lease_holder(job_id, lease) is None:
                raise HTTPException(409, "lease lost")
            os.replace(probe, final)
            if not store.finish(job_id, lease, final.name, digest, info):
                if (store.get_job(job_id) or {}).get("state") == "deleted":
                    final.unlink(missing_ok=True)
                raise HTTPException(409, "lease lost")
        finally:
            tmp.unlink(missing_ok=True)
            tmp.with_name(tmp.name + "." + j["format"]).unlink(missing_ok=True)
        return {"state": "done", "sha256": digest}

    @app.get("/api/worker/songs/{song_id}", tags=["worker"])
    def worker_song(song_id: str, p: Principal = Depends(worker)):
        s = song_or_404(song_id)
        return FileResponse(cfg.data_dir / "songs" / s["file"],
                            media_type="application/octet-stream")

    @app.get("/api/worker/voices/{voice_id}/archive", tags=["worker"])
    def worker_voice(voice_id: str, p: Principal = Depends(worker)):
        d = resolve_voice(cfg.voices_dir, voice_id)
        return Response(voice_archive(d), media_type="application/x-tar",
                        headers={"X-Voice-Digest": voice_digest(d)})

    # ------------------------------------------------------------------------------ UI

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html")

    @app.get("/live", include_in_schema=False)
    def live():
        return FileResponse(STATIC / "live.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
