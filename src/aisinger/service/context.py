"""What every route needs: the service's state (config, store, queue) and the shared request
helpers (authentication, streamed uploads, 404 lookups, job and song views).

:func:`create_app <aisinger.service.app.create_app>` builds one :class:`ServiceContext` and
keeps it on ``app.state.ctx``; routes get it and the caller's token with the FastAPI
dependencies of :func:`dependencies` (``Depends(deps.context)``, ``Depends(deps.user)``, …).

FastAPI is imported inside functions only (see ``HEAVY`` in tests/test_layering.py: the
``aisinger`` command imports this package but must not pay for FastAPI on every start).  This
module does not use ``from __future__ import annotations``: FastAPI reads the annotations of
the dependencies built in :func:`dependencies` (``request: Request``) at definition time.
"""

import functools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from aisinger.service.config import ServiceConfig
from aisinger.service.media import UploadError, scrub_paths
from aisinger.service.queue import JobQueue
from aisinger.service.store import Principal, Store, new_id

if TYPE_CHECKING:
    from fastapi import Request

CONSENT_SCOPE = "non-commercial"
"""The scope a voice's consent must cover for cover + serve (a public request service)."""
OCTET = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}
"""OpenAPI description of a raw-body upload."""


@dataclass
class ServiceContext:
    """The state of one app: ``cfg``, ``store``, ``queue``; :meth:`enqueue` sends a job to the
    queue engine and records it."""

    cfg: ServiceConfig
    store: Store
    queue: JobQueue
    enqueue_lock: threading.Lock = field(default_factory=threading.Lock)

    def enqueue(self, job_id: str) -> None:
        with self.enqueue_lock:
            self.queue.enqueue(job_id)
        self.store.mark_enqueued(job_id)

    def public(self, message: str, names: Optional[dict] = None) -> str:
        """A message without this server's file paths (users see names, not folders)."""
        cfg = self.cfg
        roots = {cfg.data_dir, cfg.data_dir.resolve(), cfg.voices_dir, cfg.voices_dir.resolve()}
        return scrub_paths(message, names or {}, tuple(roots))

    def song_or_404(self, song_id: str) -> dict:
        from fastapi import HTTPException

        s = self.store.get_song(song_id) if len(song_id) <= 64 else None
        if s is None:
            raise HTTPException(404, f"song {song_id[:64]}: no such song")
        return s

    def job_or_404(self, job_id: str) -> dict:
        from fastapi import HTTPException

        j = self.store.get_job(job_id) if len(job_id) <= 64 else None
        if j is None or j["state"] == "deleted":
            raise HTTPException(404, f"job {job_id[:64]}: no such job")
        return j

    @staticmethod
    def require_owner(record: dict, p: Principal, who: str, what: str) -> None:
        """403 unless ``p`` owns ``record`` (a song or job row) or is an admin."""
        if record["owner"] != p.name and not p.is_admin:
            from fastapi import HTTPException

            raise HTTPException(403, f"only the {who} or an admin can delete {what}")

    def job_out(self, j: dict) -> dict:
        """A job as the API shows it."""
        song = self.store.get_song(j["song_id"])
        out = {k: j.get(k) for k in ("id", "song_id", "voice_id", "owner", "format", "state",
                                     "worker", "stage", "progress", "position", "attempts",
                                     "created", "started", "finished", "error")}
        out["song_title"] = song["title"] if song else None
        out["options"] = json.loads(j["options"])
        out["info"] = json.loads(j["info"]) if j.get("info") else None
        out["result_url"] = f"/api/jobs/{j['id']}/result" if j["state"] == "done" else None
        return out

    async def receive_upload(self, request: "Request", limit: int, what: str) -> Path:
        """Stream the request body to ``uploads/<new id>`` (413 over ``limit`` bytes)."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise UploadError(f"{what}: {int(declared)} bytes; the limit is {limit} bytes", 413)
        tmp = self.cfg.data_dir / "uploads" / new_id()
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


def song_out(s: dict) -> dict:
    """A song as the API shows it."""
    return {k: s[k] for k in ("id", "title", "owner", "format", "seconds", "sr", "channels",
                              "bytes", "created")}


@dataclass(frozen=True)
class Dependencies:
    """The FastAPI dependencies routes share: ``context`` (the app's :class:`ServiceContext`),
    ``principal`` (the caller of a valid token, 401 otherwise) and the role checks ``user``
    (user or admin), ``admin`` and ``worker`` (403 for another role)."""

    context: Callable
    principal: Callable
    user: Callable
    admin: Callable
    worker: Callable


@functools.cache
def dependencies() -> Dependencies:
    """The shared dependencies, built once per process (one set of callables, so FastAPI's
    per-request dependency cache sees the same ones in every router)."""
    from fastapi import Depends, HTTPException, Request
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

    def context(request: Request) -> ServiceContext:
        """Dependency: the app's :class:`ServiceContext`."""
        return request.app.state.ctx

    # Token checks are single indexed SQLite reads (well under 1 ms): they run on the event
    # loop, skipping the thread-pool hop that dominates their latency under load.
    bearer = HTTPBearer(auto_error=False)

    async def principal(request: Request,
                        cred: Optional[HTTPAuthorizationCredentials] = Depends(bearer)
                        ) -> Principal:
        """Dependency: the caller of a valid token (401 otherwise)."""
        p = request.app.state.ctx.store.authenticate(cred.credentials if cred else None)
        if p is None:
            raise HTTPException(401, "missing or invalid API token",
                                headers={"WWW-Authenticate": "Bearer"})
        return p

    async def user(p: Principal = Depends(principal)) -> Principal:
        """Dependency: a client (user or admin) token."""
        if p.role not in ("user", "admin"):
            raise HTTPException(403, "this token cannot use the client API")
        return p

    async def admin(p: Principal = Depends(principal)) -> Principal:
        """Dependency: an admin token."""
        if p.role != "admin":
            raise HTTPException(403, "admin token required")
        return p

    async def worker(p: Principal = Depends(principal)) -> Principal:
        """Dependency: a worker token."""
        if p.role != "worker":
            raise HTTPException(403, "worker token required")
        return p

    return Dependencies(context, principal, user, admin, worker)
