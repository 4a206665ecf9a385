"""``/api/health`` and ``/api/me``."""

from typing import TYPE_CHECKING

from aisinger import __version__
from aisinger.service.context import ServiceContext, dependencies
from aisinger.service.store import Principal

if TYPE_CHECKING:
    from fastapi import APIRouter


def router() -> "APIRouter":
    """The ``/api/health`` and ``/api/me`` routes."""
    from fastapi import APIRouter, Depends

    deps = dependencies()
    api = APIRouter(prefix="/api", tags=["general"])

    @api.get("/health")
    def health(ctx: ServiceContext = Depends(deps.context)) -> dict:
        """Liveness, version, queue engine and job counts (no token needed)."""
        return {"ok": True, "version": __version__,
                "queue": "sqlite" if ctx.cfg.queue == "sqlite" else "redis",
                "jobs": ctx.store.counts()}

    @api.get("/me")
    def me(p: Principal = Depends(deps.principal)) -> dict:
        return {"name": p.name, "role": p.role}

    return api
