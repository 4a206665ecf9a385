"""``/api/health`` and ``/api/me``."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from aisinger import __version__
from aisinger.service.context import ServiceContext, context, principal
from aisinger.service.store import Principal

router = APIRouter(prefix="/api", tags=["general"])


@router.get("/health")
def health(ctx: ServiceContext = Depends(context)) -> dict:
    """Liveness, version, queue engine and job counts (no token needed)."""
    return {"ok": True, "version": __version__,
            "queue": "sqlite" if ctx.cfg.queue == "sqlite" else "redis",
            "jobs": ctx.store.counts()}


@router.get("/me")
def me(p: Principal = Depends(principal)) -> dict:
    return {"name": p.name, "role": p.role}
