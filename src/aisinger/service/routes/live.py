"""Live voice: the ``/live-voice`` page, the ``/api/live/ws`` WebSocket (protocol in
:mod:`aisinger.service.live` and docs/service.md), the voices it can use and the saved
recordings."""

from pathlib import Path
from typing import TYPE_CHECKING

from aisinger.errors import AisingerError
from aisinger.service.context import CONSENT_SCOPE, ServiceContext, dependencies
from aisinger.service.live import (LiveClosed, LiveSession, Sessions, find_recording,
                                   list_recordings, live_voice, voice_stream_rate)
from aisinger.service.media import list_voices
from aisinger.service.store import Principal

STATIC = Path(__file__).resolve().parents[1] / "static"

if TYPE_CHECKING:
    from fastapi import APIRouter


def _live_voices(ctx: ServiceContext) -> list[dict]:
    out = []
    for v in list_voices(ctx.cfg.voices_dir, CONSENT_SCOPE):
        item = {k: v[k] for k in ("id", "name", "consent")}
        item.update(usable=True, problem=None, sample_rate=None)
        try:
            voice_dir = live_voice(ctx.cfg.voices_dir, v["id"], CONSENT_SCOPE)
            item["sample_rate"] = voice_stream_rate(voice_dir)
        except LiveClosed as c:
            item.update(usable=False, problem=ctx.public(c.reason))
        except (AisingerError, OSError) as err:
            item.update(usable=False, problem=ctx.public(str(err)))
        out.append(item)
    return out


def router() -> "APIRouter":
    """The live-voice routes; one :class:`~aisinger.service.live.Sessions` per app."""
    from fastapi import APIRouter, Depends, HTTPException, WebSocket
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import FileResponse

    deps = dependencies()
    api = APIRouter()
    state = {}

    @api.get("/live-voice", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "live-voice.html")

    @api.websocket("/api/live/ws")
    async def live_ws(ws: WebSocket):
        ctx: ServiceContext = ws.app.state.ctx
        if "sessions" not in state:
            state["sessions"] = Sessions(ctx.cfg.max_live_sessions)
        factory = getattr(ws.app.state, "live_factory", None)
        kw = {"factory": factory} if factory is not None else {}
        await LiveSession(ws, ctx, state["sessions"], **kw).run()

    @api.get("/api/live/voices", tags=["live"])
    async def voices(p: Principal = Depends(deps.user),
                     ctx: ServiceContext = Depends(deps.context)) -> list[dict]:
        """Voices for live use: ``sample_rate`` is the rate to stream at (the client resamples
        to it); ``usable`` says whether the voice's consent permits live conversion here."""
        return await run_in_threadpool(_live_voices, ctx)

    @api.get("/api/live/recordings", tags=["live"])
    def recordings(p: Principal = Depends(deps.user),
                   ctx: ServiceContext = Depends(deps.context)) -> list[dict]:
        """Your saved live recordings (admin: everyone's), newest first."""
        return list_recordings(ctx.cfg.data_dir, None if p.is_admin else p.name)

    def _owned(rid: str, p: Principal, ctx: ServiceContext):
        found = find_recording(ctx.cfg.data_dir, rid)
        if found is None:
            raise HTTPException(404, f"recording {rid[:64]}: no such recording")
        rec, path = found
        if rec.get("owner") != p.name and not p.is_admin:
            raise HTTPException(403, "only the speaker or an admin can use this recording")
        return rec, path

    @api.get("/api/live/recordings/{rid}", tags=["live"])
    def recording(rid: str, p: Principal = Depends(deps.user),
                  ctx: ServiceContext = Depends(deps.context)):
        """A saved recording: FLAC, labelled (AIGC metadata, watermark, audible notice)."""
        rec, path = _owned(rid, p, ctx)
        return FileResponse(path, media_type="audio/flac",
                            filename=f"live-{rec.get('voice_id', 'voice')}-{rid[:8]}.flac")

    @api.delete("/api/live/recordings/{rid}", tags=["live"])
    def delete_recording(rid: str, p: Principal = Depends(deps.user),
                         ctx: ServiceContext = Depends(deps.context)) -> dict:
        rec, path = _owned(rid, p, ctx)
        path.unlink(missing_ok=True)
        path.with_suffix(".json").unlink(missing_ok=True)
        return {"deleted": rid}

    return api
