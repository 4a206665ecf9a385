"""A worker process: job IDs from the queue engine, jobs claimed from the server over HTTP.

For each message the worker claims the oldest queued job (``POST /api/worker/claim``): the
server answers with a *lease*, or 409 when nothing is queued, so a duplicate message does
nothing, and jobs run in submission order (a job requeued after its worker was lost keeps its
place, whichever message is delivered first).  While the job runs, a heartbeat thread sends
progress and extends the lease; if the server says the lease is gone (job deleted, or given to
another worker after this one was presumed dead) the job stops at the next progress call.  The
result is uploaded with the lease; the server places it under a name derived from the job
ID and marks the job done in one transaction.  Killed with -9, a worker just stops sending
heartbeats; the server's reaper queues the job again when the lease expires.

Workers need only the queue engine's URL, the server's URL and a worker token (environment
``AISINGER_SERVE_TOKEN``), so they can run on other machines (docs/service.md).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import tempfile
import threading
import time
import traceback
from pathlib import Path

from aisinger.errors import AisingerError
from aisinger.io.fileio import clean_stale, temp_prefix
from aisinger.layout import VOICE_CONFIG
from aisinger.service.jobs import JOB_FUNCTIONS
from aisinger.service.media import VOICE_ID, extract_voice, scrub_paths
from aisinger.service.queue import JobQueue

log = logging.getLogger("aisinger.service.worker")
TOKEN_ENV = "AISINGER_SERVE_TOKEN"
RESULT_RETRY_S = 600.0
"""How long a finished result is offered to an unreachable server before it is dropped (the
job is then requeued by the lease mechanism)."""



def worker_name(pid: int) -> str:
    """The name a local worker process claims jobs under (``host:pid``); ``serve``'s worker
    pool uses it to release the job of a worker it saw die."""
    return f"{socket.gethostname()}:{pid}"

class JobLost(Exception):
    """The server no longer gives this worker the job (deleted, or the lease expired)."""


class _Heartbeat:
    """Sends progress and extends the lease, at most every ``min_gap_s`` and at least every
    ``every_s``; records whether the lease was lost."""

    def __init__(self, client, job_id: str, lease: str, every_s: float, min_gap_s: float = 0.5):
        self.client, self.job_id, self.lease = client, job_id, lease
        self.every_s, self.min_gap_s = every_s, min_gap_s
        self.stage, self.fraction = "starting", 0.0
        self.lost = False
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def progress(self, stage: str, fraction: float) -> None:
        if self.lost:
            raise JobLost(self.job_id)
        self.stage, self.fraction = str(stage)[:40], max(0.0, min(1.0, float(fraction)))
        self._wake.set()

    def _send(self) -> None:
        try:
            r = self.client.post(f"/api/worker/jobs/{self.job_id}/heartbeat",
                                 json={"lease": self.lease, "stage": self.stage,
                                       "progress": self.fraction})
            if r.status_code == 409:
                self.lost = True
        except Exception as exc:  # noqa: BLE001 - server restarting: keep trying
            log.warning("heartbeat for %s failed: %s", self.job_id, exc)

    def _run(self) -> None:
        last = 0.0
        while not self._stop.is_set() and not self.lost:
            self._wake.wait(self.every_s)
            self._wake.clear()
            if self._stop.is_set():
                break
            gap = time.monotonic() - last
            if gap < self.min_gap_s:
                self._stop.wait(self.min_gap_s - gap)
            self._send()
            last = time.monotonic()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)


class Worker:
    """Runs jobs for one server; ``handle(job_id)`` is the queue task."""

    def __init__(self, server_url: str, token: str, cache_dir: str | Path,
                 name: str | None = None):
        import httpx

        self.server_url = server_url.rstrip("/")
        self.client = httpx.Client(base_url=self.server_url, timeout=60,
                                   headers={"Authorization": f"Bearer {token}"})
        self.cache = Path(cache_dir)
        (self.cache / "voices").mkdir(parents=True, exist_ok=True)
        (self.cache / "work").mkdir(parents=True, exist_ok=True)
        clean_stale(self.cache / "work")  # work folders of killed workers (kill -9)
        self.name = name or worker_name(os.getpid())

    # -------------------------------------------------------------------------- downloads

    def _download(self, url: str, path: Path) -> Path:
        with self.client.stream("GET", url) as r:
            r.raise_for_status()
            with open(path, "wb") as f:
                for block in r.iter_bytes(1 << 20):
                    f.write(block)
        return path

    def voice_dir(self, voice: dict) -> Path:
        """The voice folder, from the local cache (keyed by the voice's content digest)."""
        vid, digest = voice["id"], voice["digest"]
        if not VOICE_ID.match(vid) or not all(c in "0123456789abcdef" for c in digest):
            raise AisingerError(f"server sent a bad voice reference {vid!r}")
        # the folder keeps the voice's own name: it is the voice ID the watermark carries
        target = self.cache / "voices" / f"{vid}-{digest[:16]}" / vid
        if (target / VOICE_CONFIG).is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(target.parent)
        with tempfile.TemporaryDirectory(prefix=temp_prefix(), dir=target.parent) as tmp:
            arc = self._download(f"/api/worker/voices/{vid}/archive", Path(tmp) / "v.tar")
            staged = extract_voice(arc, Path(tmp) / vid, max_bytes=4 << 30)
            try:
                staged.rename(target)
            except OSError:  # another worker process got there first
                pass
        return target

    # ------------------------------------------------------------------------------- jobs

    def handle(self, message: str) -> None:
        """A queue message arrived: claim the oldest queued job (jobs run in submission order,
        whichever message woke the worker), run it and deliver it; a no-op when nothing is
        queued (a duplicate message)."""
        r = self.client.post("/api/worker/claim", json={"worker": self.name})
        if r.status_code in (404, 409):
            log.info("message %s: no job to claim (%s)", message, r.status_code)
            return
        r.raise_for_status()
        claim = r.json()
        job_id, lease = claim["id"], claim["lease"]
        log.info("job %s claimed (attempt %s)", job_id, claim["attempts"])
        hb = _Heartbeat(self.client, job_id, lease, every_s=max(0.5, claim["lease_s"] / 4))
        with tempfile.TemporaryDirectory(prefix=temp_prefix(), dir=self.cache / "work") as tmp:
            song = Path(tmp) / f"song{claim['song']['ext']}"
            out = Path(tmp) / f"{job_id}.{claim['format']}"
            names = {song: "the song", out: "the result"}
            try:
                self._download(f"/api/worker/songs/{claim['song']['id']}", song)
                voice = self.voice_dir(claim["voice"])
                names[voice] = f"voice {claim['voice']['id']}"
                fn = JOB_FUNCTIONS[claim["job_kind"]]
                info = fn(song, voice, out, claim["options"], hb.progress)
            except JobLost:
                log.info("job %s: lease lost; stopped", job_id)
                return
            except AisingerError as err:
                log.info("job %s failed: %s", job_id, err)
                self._fail(job_id, lease, self._public(str(err), names), retry=False)
                return
            except Exception as exc:  # noqa: BLE001 - a bug or a resource problem: retry
                log.error("job %s crashed:\n%s", job_id, traceback.format_exc())
                self._fail(job_id, lease, self._public(f"{type(exc).__name__}: {exc}", names),
                           retry=True)
                return
            finally:
                hb.stop()
            if hb.lost:
                return
            self._deliver(job_id, lease, out, info)

    def _public(self, message: str, names: dict) -> str:
        """What users may see of an error: this machine's paths (the job's temp folder, the
        cache, the temp dir) replaced by what they are (full text stays in the worker log)."""
        roots = (self.cache.resolve(), self.cache, Path(tempfile.gettempdir()).resolve(),
                 tempfile.gettempdir())
        return scrub_paths(message, {**{p.resolve(): v for p, v in names.items()}, **names},
                           roots)

    def _fail(self, job_id: str, lease: str, message: str, retry: bool) -> None:
        try:
            self.client.post(f"/api/worker/jobs/{job_id}/fail",
                             json={"lease": lease, "message": message.splitlines()[0][:500]
                                   if message else "error", "retry": retry})
        except Exception as exc:  # noqa: BLE001 - the lease will expire and requeue it
            log.warning("could not report failure of %s: %s", job_id, exc)

    def _deliver(self, job_id: str, lease: str, out: Path, info: dict) -> None:
        """Upload the result; retried while the server is unreachable."""
        header = base64.urlsafe_b64encode(json.dumps(info, default=str).encode()).decode()
        deadline = time.monotonic() + RESULT_RETRY_S
        delay = 0.5
        while True:
            try:
                with open(out, "rb") as f:
                    r = self.client.put(f"/api/worker/jobs/{job_id}/result",
                                        params={"lease": lease}, content=f,
                                        headers={"X-Aisinger-Info": header,
                                                 "Content-Type": "application/octet-stream"})
                if r.status_code == 409:
                    log.info("job %s: result refused (lease gone)", job_id)
                    return
                if 400 <= r.status_code < 500:  # refused for good (e.g. not audio): a bug
                    self._fail(job_id, lease, f"result refused: {r.text[:200]}", retry=True)
                    return
                r.raise_for_status()
                log.info("job %s done", job_id)
                return
            except Exception as exc:  # noqa: BLE001 - server down: retry until the deadline
                if time.monotonic() > deadline:
                    log.error("job %s: giving up delivering the result: %s", job_id, exc)
                    return
                log.warning("job %s: result upload failed (%s); retrying", job_id, exc)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)


def _watch_parent(parent_pid: int) -> None:
    while True:
        if os.getppid() != parent_pid:
            os._exit(3)  # the server that started us is gone; its successor starts new workers
        time.sleep(0.5)


def run_worker(server_url: str, queue_url: str, cache_dir: str | Path, token: str | None = None,
               parent_pid: int | None = None, threads: int = 1, nice: int = 0) -> None:
    """Run a worker until it is stopped (SIGINT/SIGTERM)."""
    token = token or os.environ.get(TOKEN_ENV)
    if not token:
        raise AisingerError(f"a worker needs a worker token: set {TOKEN_ENV} (create one with "
                            "'aisinger serve token create --worker')")
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    os.environ.setdefault("AISINGER_PROGRESS", "0")
    if nice:
        os.nice(nice)
    import torch

    torch.set_num_threads(max(1, threads))

    if parent_pid:
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    worker = Worker(server_url, token, cache_dir)
    queue = JobQueue(queue_url, handler=worker.handle)
    log.info("worker %s: queue %s, server %s", worker.name, queue_url.split("@")[-1],
             server_url)
    queue.consumer().run()


def main(argv: list[str] | None = None) -> None:
    """``python -m aisinger.service.worker`` (what ``serve`` starts)."""
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", required=True)
    p.add_argument("--queue", required=True)
    p.add_argument("--cache", required=True)
    p.add_argument("--parent-pid", type=int, default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--nice", type=int, default=0)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("huey").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        run_worker(a.server, a.queue, a.cache, parent_pid=a.parent_pid, threads=a.threads,
                   nice=a.nice)
    except AisingerError as err:
        print(f"error: {err}")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
