"""Request bodies of the HTTP API (pydantic).  Allowed values come from the library, so the
API, the CLI and the web UI accept the same options."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from aisinger.convert.key import KEY_MODES
from aisinger.features.pitch import METHODS
from aisinger.label.cue import CUE_KINDS
from aisinger.service.media import RESULT_FORMATS

AUDIBLE_CUES = tuple(k for k in CUE_KINDS if k != "none")
"""The service always adds an audible notice: these are its kinds."""
RESULT_FORMAT_NAMES = tuple(RESULT_FORMATS)


class CoverOptionsIn(BaseModel):
    """Cover options (unset fields take aisinger.pipelines.cover's defaults)."""

    model_config = ConfigDict(extra="forbid")
    transpose: Optional[float] = Field(None, ge=-24, le=24,
                                       description="semitones; null = automatic key")
    key_shift: Optional[Literal[KEY_MODES]] = Field(
        None, description="automatic key: shift by whole octaves or by semitones")
    retrieval: Optional[float] = Field(None, ge=0, le=1)
    protect: Optional[float] = Field(None, ge=0, le=1)
    f0_method: Optional[Literal[METHODS]] = None
    explicit_label: Optional[Literal[AUDIBLE_CUES]] = Field(
        None, description="audible AI notice (always on in the service): spoken or rhythm cue")


class JobIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    song_id: str = Field(..., max_length=64)
    voice_id: str = Field(..., max_length=64)
    options: CoverOptionsIn = Field(default_factory=CoverOptionsIn)
    format: Literal[RESULT_FORMAT_NAMES] = "mp3"


class ClaimIn(BaseModel):
    worker: str = Field("worker", max_length=120)


class HeartbeatIn(BaseModel):
    lease: str = Field(..., max_length=64)
    stage: Optional[str] = Field(None, max_length=40)
    progress: Optional[float] = Field(None, ge=0, le=1)


class FailIn(BaseModel):
    lease: str = Field(..., max_length=64)
    message: str = Field("error", max_length=500)
    retry: bool = False


class ImportIn(BaseModel):
    path: str = Field(..., max_length=1000)
