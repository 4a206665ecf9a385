"""The web UI: ``/`` (request page) and ``/live`` (the queue for a stream), plus ``/static``."""

from pathlib import Path
from typing import TYPE_CHECKING

STATIC = Path(__file__).resolve().parents[1] / "static"

if TYPE_CHECKING:
    from fastapi import APIRouter


def router() -> "APIRouter":
    """The web UI routes."""
    from fastapi import APIRouter
    from fastapi.responses import FileResponse

    api = APIRouter(include_in_schema=False)

    @api.get("/")
    def index():
        return FileResponse(STATIC / "index.html")

    @api.get("/live")
    def live():
        return FileResponse(STATIC / "live.html")

    return api
