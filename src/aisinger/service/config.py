"""The service configuration: one dataclass, saved as ``service.json`` in the data folder."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from aisinger.errors import AisingerError
from aisinger.io.fileio import write_json

CONFIG_FILE = "service.json"
JOB_KINDS = ("cover", "label")
"""What a worker runs: ``cover`` (the product) or ``label`` (labels the uploaded song; used by
tests of the queue mechanics, where a cover would only add minutes)."""


@dataclass
class ServiceConfig:
    """Everything ``aisinger serve`` needs.

    Attributes:
        data_dir: service.db (tokens, songs, jobs), queue.db, songs/, results/, uploads/.
        voices_dir: the voices folder (one voice folder per voice); default ``data_dir/voices``.
        host, port: where the HTTP server listens (loopback by default).
        workers: worker processes ``serve`` starts and restarts (0: only remote workers).
        queue: ``"sqlite"`` (embedded, ``data_dir/queue.db``) or a ``redis://`` URL.
        server_url: the URL workers use to reach the server (default http://host:port).
        max_upload_mb, max_song_seconds: song upload limits.
        max_voice_archive_mb: voice archive upload limit.
        max_result_mb: largest result a worker may upload.
        lease_s: a claimed job whose worker sends no heartbeat for this long is requeued.
        max_attempts: a job whose worker was lost this many times fails.
        requeue_after_s: a queued job missing from the queue engine this long is re-enqueued.
        job_kind: see :data:`JOB_KINDS`.
        voice_import_roots: server folders an admin may import voices from by path (none:
            import by path is off; upload an archive instead).
        worker_nice: niceness of local workers, so the API stays responsive under load.
        worker_threads: torch threads per worker.
        max_live_sessions: live voice sessions (``/api/live/ws``) at once; more are refused
            with "try again later" (each needs about one core in real time).
        live_threads: torch threads per live session's converter.
        live_max_record_s: the longest recording a live session saves.
    """

    data_dir: Path = Path("aisinger-service")
    voices_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    queue: str = "sqlite"
    server_url: str | None = None
    max_upload_mb: float = 50.0
    max_song_seconds: float = 600.0
    max_voice_archive_mb: float = 200.0
    max_result_mb: float = 500.0
    lease_s: float = 30.0
    max_attempts: int = 3
    requeue_after_s: float = 10.0
    job_kind: str = "cover"
    voice_import_roots: list[str] = field(default_factory=list)
    worker_nice: int = 10
    worker_threads: int = 1
    max_live_sessions: int = 2
    live_threads: int = 1
    live_max_record_s: float = 600.0

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.voices_dir = Path(self.voices_dir) if self.voices_dir else self.data_dir / "voices"
        if self.job_kind not in JOB_KINDS:
            raise AisingerError(f"service config: job_kind must be one of {JOB_KINDS}, "
                                f"got {self.job_kind!r}")
        if not (self.queue == "sqlite" or self.queue.startswith(("redis://", "rediss://",
                                                                  "unix://"))):
            raise AisingerError(f"service config: queue must be 'sqlite' or a redis:// URL, "
                                f"got {self.queue!r}")
        if self.max_live_sessions < 0 or self.live_threads < 1 or self.live_max_record_s <= 0:
            raise AisingerError("service config: max_live_sessions >= 0, live_threads >= 1 and "
                                "live_max_record_s > 0 are required")
        if self.workers < 0 or self.max_attempts < 1 or self.lease_s <= 0:
            raise AisingerError("service config: workers >= 0, max_attempts >= 1 and "
                                "lease_s > 0 are required")

    @property
    def url(self) -> str:
        """The URL workers talk to."""
        if self.server_url:
            return self.server_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "service.db"

    @property
    def queue_url(self) -> str:
        """``sqlite:///<data_dir>/queue.db`` or the redis URL."""
        if self.queue == "sqlite":
            return f"sqlite://{(self.data_dir / 'queue.db').resolve()}"
        return self.queue

    def to_dict(self) -> dict:
        d = asdict(self)
        d["data_dir"], d["voices_dir"] = str(self.data_dir), str(self.voices_dir)
        return d

    def save(self) -> Path:
        return write_json(self.data_dir / CONFIG_FILE, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> ServiceConfig:
        path = Path(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AisingerError(f"{path}: unreadable service config ({type(exc).__name__})") \
                from None
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(doc) - known)
        if unknown:
            raise AisingerError(f"{path}: unknown service config key {unknown[0]!r}")
        return cls(**doc)
