"""The web UI: ``/`` (request page) and ``/live`` (the queue for a stream), plus ``/static``."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC = Path(__file__).resolve().parents[1] / "static"
router = APIRouter(include_in_schema=False)


@router.get("/")
def index():
    return FileResponse(STATIC / "index.html")


@router.get("/live")
def live():
    return FileResponse(STATIC / "live.html")
