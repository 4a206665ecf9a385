"""``/api/worker``: what remote workers call (claim, heartbeat, fail, deliver; song and voice
downloads)."""

import base64
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from aisinger.io.audio import info as audio_info
from aisinger.io.fileio import sha256_file
from aisinger.service.context import OCTET, ServiceContext, dependencies
from aisinger.service.media import UploadError, resolve_voice, voice_archive, voice_digest
from aisinger.service.schemas import ClaimIn, FailIn, HeartbeatIn
from aisinger.service.store import Principal

if TYPE_CHECKING:
    from fastapi import APIRouter


def _claimed(ctx: ServiceContext, j: dict) -> dict:
    """The claim answer for the job ``j`` just claimed (fails it, 409, when its song or
    voice is gone)."""
    from fastapi import HTTPException

    cfg, store = ctx.cfg, ctx.store
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


def router() -> "APIRouter":
    """The ``/api/worker`` routes."""
    from fastapi import APIRouter, Depends, HTTPException, Query, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import FileResponse, Response

    deps = dependencies()
    api = APIRouter(prefix="/api/worker", tags=["worker"])

    @api.post("/jobs/{job_id}/claim")
    def claim(job_id: str, body: ClaimIn, p: Principal = Depends(deps.worker),
              ctx: ServiceContext = Depends(deps.context)) -> dict:
        """Take a job: 200 with a lease, or 409 if it is not claimable (done, running with a live
        lease, deleted)."""
        cfg, store = ctx.cfg, ctx.store
        j = store.claim(job_id, body.worker, cfg.lease_s) if len(job_id) <= 64 else None
        if j is None:
            raise HTTPException(409, "job is not claimable")
        return _claimed(ctx, j)

    @api.post("/claim")
    def claim_next(body: ClaimIn, p: Principal = Depends(deps.worker),
                   ctx: ServiceContext = Depends(deps.context)) -> dict:
        """Take the oldest queued job (what a queue message means: work is waiting): 200 with a
        lease, or 409 when nothing is queued (a duplicate message)."""
        while True:
            j = ctx.store.claim_next(body.worker, ctx.cfg.lease_s)
            if j is None:
                raise HTTPException(409, "no job is queued")
            try:
                return _claimed(ctx, j)
            except HTTPException:
                continue  # its song or voice is gone (job failed): take the next one

    @api.post("/jobs/{job_id}/heartbeat")
    def heartbeat(job_id: str, body: HeartbeatIn, p: Principal = Depends(deps.worker),
                  ctx: ServiceContext = Depends(deps.context)) -> dict:
        if not ctx.store.heartbeat(job_id, body.lease, ctx.cfg.lease_s, body.stage, body.progress):
            raise HTTPException(409, "lease lost")
        return {"ok": True}

    @api.post("/jobs/{job_id}/fail")
    def fail(job_id: str, body: FailIn, p: Principal = Depends(deps.worker),
             ctx: ServiceContext = Depends(deps.context)) -> dict:
        state = ctx.store.fail(job_id, body.lease, body.message, body.retry, ctx.cfg.max_attempts)
        if state is None:
            raise HTTPException(409, "lease lost")
        return {"state": state}

    @api.put("/jobs/{job_id}/result", openapi_extra=OCTET)
    async def put_result(job_id: str, request: Request, lease: str = Query(..., max_length=64),
                         p: Principal = Depends(deps.worker),
                         ctx: ServiceContext = Depends(deps.context)) -> dict:
        """Deliver a result: written to ``results/<job id>.<format>`` atomically, then the job is
        marked done in one transaction (only with the current lease)."""
        store = ctx.store
        j = store.lease_holder(job_id, lease)
        if j is None:
            raise HTTPException(409, "lease lost")
        try:
            info = json.loads(base64.urlsafe_b64decode(
                request.headers.get("x-aisinger-info", "") or "e30="))
        except ValueError:
            info = {}
        tmp = await ctx.receive_upload(request, int(ctx.cfg.max_result_mb * 2**20), "result")
        final = ctx.cfg.data_dir / "results" / f"{job_id}.{j['format']}"
        try:
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

    @api.get("/songs/{song_id}")
    def worker_song(song_id: str, p: Principal = Depends(deps.worker),
                    ctx: ServiceContext = Depends(deps.context)):
        s = ctx.song_or_404(song_id)
        return FileResponse(ctx.cfg.data_dir / "songs" / s["file"],
                            media_type="application/octet-stream")

    @api.get("/voices/{voice_id}/archive")
    def worker_voice(voice_id: str, p: Principal = Depends(deps.worker),
                     ctx: ServiceContext = Depends(deps.context)):
        d = resolve_voice(ctx.cfg.voices_dir, voice_id)
        return Response(voice_archive(d), media_type="application/x-tar",
                        headers={"X-Voice-Digest": voice_digest(d)})

    return api
