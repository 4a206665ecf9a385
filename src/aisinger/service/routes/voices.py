"""``/api/voices``: the voices of the server (admins add and remove them)."""

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from aisinger.errors import AisingerError
from aisinger.layout import VOICE_FILES
from aisinger.service.context import CONSENT_SCOPE, OCTET, ServiceContext, dependencies
from aisinger.service.media import (CONSENT_AUDIO, UploadError, check_voice, extract_voice,
                                    list_voices, resolve_voice)
from aisinger.service.schemas import ImportIn
from aisinger.service.store import Principal, new_id

if TYPE_CHECKING:
    from fastapi import APIRouter


def _install(ctx: ServiceContext, staged: Path) -> dict:
    try:
        check_voice(staged, CONSENT_SCOPE)
    except AisingerError as err:
        shutil.rmtree(staged, ignore_errors=True)
        raise UploadError(ctx.public(str(err), {staged: "voice", staged.resolve(): "voice"}),
                          400) from None
    final = ctx.cfg.voices_dir / f"v{new_id()[:12]}"
    os.replace(staged, final)
    return next(v for v in list_voices(ctx.cfg.voices_dir, CONSENT_SCOPE)
                if v["id"] == final.name)


def router() -> "APIRouter":
    """The ``/api/voices`` routes."""
    from fastapi import APIRouter, Depends, HTTPException, Request
    from fastapi.concurrency import run_in_threadpool

    deps = dependencies()
    api = APIRouter(prefix="/api/voices", tags=["voices"])

    @api.get("")
    def voices(p: Principal = Depends(deps.user),
               ctx: ServiceContext = Depends(deps.context)) -> list[dict]:
        """Voices with their model cards and consent scope; ``usable`` says whether the consent
        covers covers in this (public, non-commercial) service."""
        return list_voices(ctx.cfg.voices_dir, CONSENT_SCOPE)

    @api.post("", status_code=201, openapi_extra=OCTET)
    async def upload_voice(request: Request, p: Principal = Depends(deps.admin),
                           ctx: ServiceContext = Depends(deps.context)) -> dict:
        """Admin: add a voice from a tar/zip archive of a voice folder (raw request body)."""
        limit = int(ctx.cfg.max_voice_archive_mb * 2**20)
        tmp = await ctx.receive_upload(request, limit, "voice")
        staged = ctx.cfg.voices_dir / f".incoming-{new_id()}"
        try:
            await run_in_threadpool(extract_voice, tmp, staged, limit * 4)
            return await run_in_threadpool(_install, ctx, staged)
        finally:
            tmp.unlink(missing_ok=True)
            shutil.rmtree(staged, ignore_errors=True)

    @api.post("/import", status_code=201)
    def import_voice(body: ImportIn, p: Principal = Depends(deps.admin),
                     ctx: ServiceContext = Depends(deps.context)) -> dict:
        """Admin: copy a voice folder that is already on the server, from inside one of the
        configured ``voice_import_roots`` (off when none are configured)."""
        roots = [Path(r).resolve() for r in ctx.cfg.voice_import_roots]
        if not roots:
            raise HTTPException(403, "import by path is off (no voice_import_roots configured);"
                                     " upload an archive instead")
        src = Path(body.path).resolve()
        if not any(src == r or r in src.parents for r in roots) or not src.is_dir():
            raise HTTPException(400, "path is not a folder inside the voice import roots")
        staged = ctx.cfg.voices_dir / f".incoming-{new_id()}"
        try:
            staged.mkdir()
            for f in src.iterdir():
                if f.is_file() and not f.is_symlink() and (f.name in VOICE_FILES or
                                                           CONSENT_AUDIO.match(f.name)):
                    shutil.copyfile(f, staged / f.name)
            return _install(ctx, staged)
        finally:
            shutil.rmtree(staged, ignore_errors=True)

    @api.delete("/{voice_id}")
    def delete_voice(voice_id: str, p: Principal = Depends(deps.admin),
                     ctx: ServiceContext = Depends(deps.context)) -> dict:
        shutil.rmtree(resolve_voice(ctx.cfg.voices_dir, voice_id))
        return {"deleted": voice_id}

    return api
