"""``/api/songs``: the shared song library."""

import os
import time
from typing import TYPE_CHECKING, Optional

from aisinger.io.fileio import sha256_file
from aisinger.service.context import OCTET, ServiceContext, dependencies, song_out
from aisinger.service.media import MEDIA_TYPES, clean_title, sniff_song
from aisinger.service.store import Principal, new_id

if TYPE_CHECKING:
    from fastapi import APIRouter


def router() -> "APIRouter":
    """The ``/api/songs`` routes."""
    from fastapi import APIRouter, Depends, HTTPException, Query, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import FileResponse

    deps = dependencies()
    api = APIRouter(prefix="/api/songs", tags=["songs"])

    @api.post("", status_code=201, openapi_extra=OCTET)
    async def upload_song(request: Request, title: Optional[str] = Query(None, max_length=200),
                          p: Principal = Depends(deps.user),
                          ctx: ServiceContext = Depends(deps.context)) -> dict:
        """Upload a song as the raw request body (WAV, FLAC, MP3, OGG or M4A, recognised by
        content; size and duration limits apply).  ``title`` is only displayed."""
        cfg = ctx.cfg
        tmp = await ctx.receive_upload(request, int(cfg.max_upload_mb * 2**20), "song")
        try:
            ext, i = await run_in_threadpool(sniff_song, tmp, cfg.max_song_seconds,
                                             clean_title(title, "song"))
            sid = new_id()
            final = cfg.data_dir / "songs" / f"{sid}{ext}"
            digest = sha256_file(tmp)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        song = ctx.store.add_song({"id": sid, "title": clean_title(title, f"song {sid[:6]}"),
                                   "owner": p.name, "file": final.name, "format": ext[1:],
                                   "seconds": round(i.duration, 3), "sr": i.sr,
                                   "channels": i.channels, "bytes": final.stat().st_size,
                                   "sha256": digest, "created": time.time()})
        return song_out(song)

    @api.get("")
    def songs(p: Principal = Depends(deps.user),
              ctx: ServiceContext = Depends(deps.context)) -> list[dict]:
        """The song library (shared by everyone on this server)."""
        return [song_out(s) for s in ctx.store.list_songs()]

    @api.get("/{song_id}")
    def song(song_id: str, p: Principal = Depends(deps.user),
             ctx: ServiceContext = Depends(deps.context)) -> dict:
        return song_out(ctx.song_or_404(song_id))

    @api.get("/{song_id}/audio")
    def song_audio(song_id: str, p: Principal = Depends(deps.user),
                   ctx: ServiceContext = Depends(deps.context)):
        path = ctx.cfg.data_dir / "songs" / ctx.song_or_404(song_id)["file"]
        return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix, "audio/wav"))

    @api.delete("/{song_id}")
    def delete_song(song_id: str, p: Principal = Depends(deps.user),
                    ctx: ServiceContext = Depends(deps.context)) -> dict:
        s = ctx.song_or_404(song_id)
        ctx.require_owner(s, p, "uploader", "a song")
        busy = [j for j in ctx.store.list_jobs(states=("queued", "running"))
                if j["song_id"] == song_id]
        if busy:
            raise HTTPException(409, f"song {song_id}: {len(busy)} job(s) still use it")
        ctx.store.delete_song(song_id)
        (ctx.cfg.data_dir / "songs" / s["file"]).unlink(missing_ok=True)
        return {"deleted": song_id}

    return api
