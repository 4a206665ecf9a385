"""``aisinger serve``: the request service's own command group (server, tokens, workers).

The main CLI mounts this sub-app; only the service opens its job store.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Optional

import typer

from aisinger.errors import AisingerError
from aisinger.service.config import CONFIG_FILE, JOB_KINDS, ServiceConfig
from aisinger.service.server import serve
from aisinger.service.store import Store
from aisinger.service.worker import run_worker

app = typer.Typer(help="The song-request service: HTTP API + web UI (中文/English) + durable "
                       "job queue with worker processes.  'aisinger serve' runs it; see "
                       "docs/service.md.", invoke_without_command=True)
token_app = typer.Typer(help="API tokens (stored hashed; shown once at creation).",
                        no_args_is_help=True)
app.add_typer(token_app, name="token")

DataDir = Annotated[Path, typer.Option("--data", help="Data folder (database, songs, results, "
                                                      "queue).")]
DEFAULT_DATA = ServiceConfig.data_dir
C = ServiceConfig  # the defaults shown below are its fields' defaults


def service_config(data: Path, **overrides) -> ServiceConfig:
    """The saved ``DATA/service.json`` (if any) with ``overrides`` (None = keep) applied."""
    saved = data / CONFIG_FILE
    cfg = ServiceConfig.load(saved).to_dict() if saved.is_file() else {}
    cfg.update({k: v for k, v in overrides.items() if v is not None}, data_dir=data)
    return ServiceConfig(**cfg)


@app.callback()
def serve_cmd(
    ctx: typer.Context,
    data: DataDir = DEFAULT_DATA,
    host: Optional[str] = typer.Option(None, "--host", help=f"Listen address (default {C.host}; "
                                       "expose it only behind a TLS proxy)."),
    port: Optional[int] = typer.Option(None, "--port", help=f"Port (default {C.port})."),
    voices: Optional[Path] = typer.Option(None, "--voices", help="Voices folder (default "
                                          "DATA/voices)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Local worker processes "
                                          f"(default {C.workers}; 0 = only remote workers)."),
    queue: Optional[str] = typer.Option(None, "--queue", help="'sqlite' (embedded) or "
                                        "redis://HOST:PORT/DB to scale out (default "
                                        f"{C.queue})."),
    server_url: Optional[str] = typer.Option(None, "--server-url", help="URL workers use to "
                                             "reach this server."),
    job_kind: Optional[str] = typer.Option(None, "--job-kind", help=f"{' or '.join(JOB_KINDS)} "
                                           "('label' for queue tests; default "
                                           f"{C.job_kind})."),
    lease: Optional[float] = typer.Option(None, "--lease", help="Seconds without a worker "
                                          "heartbeat before a job is queued again (default "
                                          f"{C.lease_s:g})."),
) -> None:
    """Run the request service (on ServiceConfig's host and port unless told otherwise; the UI
    is at / and /live)."""
    if ctx.invoked_subcommand:
        return
    serve(service_config(data, host=host, port=port, voices_dir=voices, workers=workers,
                         queue=queue, server_url=server_url, job_kind=job_kind, lease_s=lease))


@token_app.command("create")
def token_create(
    data: DataDir = DEFAULT_DATA,
    name: str = typer.Option("user", "--name", help="Who the token is for (shown in queues)."),
    admin: bool = typer.Option(False, "--admin", help="Admin role (may add voices)."),
    worker: bool = typer.Option(False, "--worker", help="Worker role (for remote workers)."),
) -> None:
    """Create a token and print it once (only its SHA-256 is stored)."""
    if admin and worker:
        raise AisingerError("a token is either --admin or --worker, not both")
    role = "admin" if admin else "worker" if worker else "user"
    tid, secret = Store(service_config(data).db_path).create_token(name, role)
    typer.echo(f"token {tid} ({role}, {name}) - shown once, keep it secret:", err=True)
    typer.echo(secret)


@token_app.command("list")
def token_list(data: DataDir = DEFAULT_DATA) -> None:
    """List tokens (IDs, names, roles; never the secrets)."""
    for t in Store(service_config(data).db_path).list_tokens():
        revoked = "  (revoked)" if t["revoked"] else ""
        typer.echo(f"{t['id']}  {t['role']:<6}  {t['name']}{revoked}")


@token_app.command("revoke")
def token_revoke(token_id: str = typer.Argument(..., help="Token ID from 'list'."),
                 data: DataDir = DEFAULT_DATA) -> None:
    """Revoke a token."""
    if not Store(service_config(data).db_path).revoke_token(token_id):
        raise AisingerError(f"no token {token_id!r}")
    typer.echo(f"revoked {token_id}")


@app.command("worker")
def worker_cmd(
    server: str = typer.Option(..., "--server", help="URL of the aisinger server."),
    queue: str = typer.Option(..., "--queue", help="Queue engine URL, e.g. redis://host:6379/0."),
    cache: Path = typer.Option(Path("aisinger-worker"), "--cache", help="Local cache (voices, "
                               "work files)."),
    threads: int = typer.Option(inspect.signature(run_worker).parameters["threads"].default,
                                "--threads", help="torch threads."),
) -> None:
    """Run a worker on this machine (token in AISINGER_SERVE_TOKEN; see docs/service.md)."""
    run_worker(server, queue, cache, threads=threads)
