"""The FastAPI application: the HTTP API, the web UI and the reaper.

``create_app(config)`` builds everything from the config (no module-level state): one
:class:`~aisinger.service.context.ServiceContext` (config, job store, queue) kept on
``app.state.ctx``, the reaper thread, and one APIRouter per resource
(:mod:`aisinger.service.routes`).  Clients authenticate with ``Authorization: Bearer <token>``;
roles: ``user`` (songs, jobs), ``admin`` (also voices, everyone's jobs), ``worker`` (the
/api/worker endpoints only).  Uploads are raw request bodies (``application/octet-stream``)
streamed to disk with a hard size limit; see :mod:`aisinger.service.media` for what is
accepted.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING

from aisinger import __version__
from aisinger.errors import AisingerError
from aisinger.service.config import ServiceConfig
from aisinger.service.context import ServiceContext
from aisinger.service.media import UploadError
from aisinger.service.queue import JobQueue
from aisinger.service.routes import general, jobs, live, songs, ui, voices, worker
from aisinger.service.routes.ui import STATIC
from aisinger.service.store import Store

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["create_app"]

log = logging.getLogger("aisinger.service")


def report_requeued(again: list[str], dead: list[str], max_attempts: int, why: str) -> None:
    """Log what :meth:`Store.requeue_expired` did (``why``: how the worker was found lost)."""
    for jid in again:
        log.warning("job %s: worker lost (%s); queued again", jid, why)
    for jid in dead:
        log.error("job %s: failed, worker lost %d times", jid, max_attempts)


def _reap_once(ctx: ServiceContext) -> None:
    """Requeue jobs whose worker lease expired (fail them after ``max_attempts``) and send
    again the queued jobs whose queue message is gone."""
    cfg, store = ctx.cfg, ctx.store
    report_requeued(*store.requeue_expired(cfg.max_attempts), cfg.max_attempts,
                    "lease expired")
    now = time.time()
    stale = store.to_enqueue(now - cfg.requeue_after_s)
    if not stale:
        return
    # A message wakes a worker, which claims the oldest queued job (whatever the message
    # names), so what matters is that there are as many messages as queued jobs.
    missing = None
    for jid, enqueued_at in stale:
        if enqueued_at is None:
            ctx.enqueue(jid)
            continue
        if missing is None:
            missing = store.queued_count() - ctx.queue.pending_count()
        if missing <= 0:
            store.mark_enqueued(jid)  # enough messages are waiting in the engine: fine
            continue
        log.warning("job %s: a queue message is gone; sent again", jid)
        ctx.enqueue(jid)
        missing -= 1


def create_app(config: ServiceConfig, queue=None) -> FastAPI:
    """The service app.  ``queue``: a :class:`~aisinger.service.queue.JobQueue` (default: the
    one the config names)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from fastapi.staticfiles import StaticFiles

    cfg = config
    for d in ("songs", "results", "uploads"):
        (cfg.data_dir / d).mkdir(parents=True, exist_ok=True)
    for stale in (cfg.data_dir / "uploads").iterdir():  # left by a crash mid-upload
        stale.unlink(missing_ok=True)
    cfg.voices_dir.mkdir(parents=True, exist_ok=True)
    ctx = ServiceContext(cfg, Store(cfg.db_path), queue or JobQueue(cfg.queue_url))
    stop = threading.Event()

    def reaper() -> None:
        while not stop.wait(1.0):
            try:
                _reap_once(ctx)
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
    app.state.ctx = ctx
    app.state.config, app.state.store, app.state.queue = cfg, ctx.store, ctx.queue
    app.state.reap_once = lambda: _reap_once(ctx)

    @app.exception_handler(UploadError)
    async def _upload_error(request: Request, exc: UploadError):
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(AisingerError)
    async def _aisinger_error(request: Request, exc: AisingerError):
        return JSONResponse({"detail": ctx.public(str(exc))}, status_code=400)

    for module in (general, songs, voices, jobs, worker, ui, live):
        app.include_router(module.router())
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
