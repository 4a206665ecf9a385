"""``/api/jobs`` (queue covers, follow them, fetch results) and ``/api/queue``."""

import logging
from typing import TYPE_CHECKING

from aisinger.consent import check_scope, check_voice
from aisinger.errors import AisingerError
from aisinger.service.context import CONSENT_SCOPE, ServiceContext, dependencies
from aisinger.service.media import RESULT_FORMATS, list_voices, resolve_voice
from aisinger.service.schemas import JobIn
from aisinger.service.store import Principal

log = logging.getLogger("aisinger.service")

if TYPE_CHECKING:
    from fastapi import APIRouter


def router() -> "APIRouter":
    """The ``/api/jobs`` and ``/api/queue`` routes."""
    from fastapi import APIRouter, Depends, HTTPException, Query
    from fastapi.responses import FileResponse

    deps = dependencies()
    api = APIRouter(prefix="/api", tags=["jobs"])

    @api.post("/jobs", status_code=201)
    def submit(body: JobIn, p: Principal = Depends(deps.user),
               ctx: ServiceContext = Depends(deps.context)) -> dict:
        """Queue a cover of a library song in a voice."""
        ctx.song_or_404(body.song_id)
        vdir = resolve_voice(ctx.cfg.voices_dir, body.voice_id)
        try:
            record = check_voice(vdir, f"cover:{CONSENT_SCOPE}")
            check_scope(record, f"serve:{CONSENT_SCOPE}")
        except AisingerError as err:
            why = ctx.public(str(err), {vdir: "voice", vdir.resolve(): "voice"})
            raise HTTPException(403, f"voice {body.voice_id}: {why}") from None
        opts = body.options.model_dump(exclude_none=True)
        j = ctx.store.add_job(body.song_id, body.voice_id, p.name, opts, body.format)
        try:
            ctx.enqueue(j["id"])
        except Exception:  # noqa: BLE001 - engine down: the reaper enqueues it later
            log.exception("enqueue %s", j["id"])
        return ctx.job_out(ctx.store.get_job(j["id"]))

    @api.get("/jobs")
    def jobs(p: Principal = Depends(deps.user), limit: int = Query(100, ge=1, le=1000),
             ctx: ServiceContext = Depends(deps.context)) -> list:
        """Your jobs (an admin's: everyone's), newest first."""
        rows = ctx.store.list_jobs(owner=None if p.is_admin else p.name, limit=limit,
                                   states=("queued", "running", "done", "failed"))
        return [ctx.job_out(j) for j in rows]

    @api.get("/jobs/{job_id}")
    async def job(job_id: str, p: Principal = Depends(deps.user),
                  ctx: ServiceContext = Depends(deps.context)) -> dict:
        """State, stage, progress (0–1) and queue position (1 = next; 0 = running)."""
        # a single indexed read: on the event loop (see aisinger.service.context)
        return ctx.job_out(ctx.job_or_404(job_id))

    @api.get("/jobs/{job_id}/result")
    def result(job_id: str, p: Principal = Depends(deps.user),
               ctx: ServiceContext = Depends(deps.context)):
        j = ctx.job_or_404(job_id)
        if j["state"] != "done" or not j["result"]:
            raise HTTPException(409, f"job {job_id}: no result yet (state {j['state']})")
        path = ctx.cfg.data_dir / "results" / j["result"]
        return FileResponse(path, media_type=RESULT_FORMATS[j["format"]],
                            filename=f"aisinger-{job_id[:12]}.{j['format']}")

    @api.delete("/jobs/{job_id}")
    def delete_job(job_id: str, p: Principal = Depends(deps.user),
                   ctx: ServiceContext = Depends(deps.context)) -> dict:
        """Cancel (queued/running) or delete (finished) a job and its result."""
        j = ctx.job_or_404(job_id)
        ctx.require_owner(j, p, "requester", "a job")
        ctx.store.delete_job(job_id)
        if j["result"]:
            (ctx.cfg.data_dir / "results" / j["result"]).unlink(missing_ok=True)
        return {"deleted": job_id}

    @api.get("/queue")
    def queue_view(p: Principal = Depends(deps.user),
                   ctx: ServiceContext = Depends(deps.context)) -> dict:
        """The request queue as a stream host shows it: running, waiting, recently done."""
        store = ctx.store
        running = store.list_jobs(states=("running",), limit=50)
        waiting = store.list_jobs(states=("queued",), limit=500)
        done = store.list_jobs(states=("done", "failed"), limit=10)
        voice_names = {v["id"]: v["name"] for v in list_voices(ctx.cfg.voices_dir, CONSENT_SCOPE)}

        def brief(j: dict) -> dict:
            o = ctx.job_out(j)
            o["voice_name"] = voice_names.get(j["voice_id"], j["voice_id"])
            return {k: o[k] for k in ("id", "song_title", "voice_name", "owner", "state",
                                      "stage", "progress", "position", "result_url")}

        return {"running": [brief(j) for j in reversed(running)],
                "waiting": [brief(j) for j in sorted(waiting, key=lambda j: j["position"])],
                "recent": [brief(j) for j in done], "counts": store.counts()}

    return api
