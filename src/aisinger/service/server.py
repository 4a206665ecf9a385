"""``aisinger serve``: the HTTP server plus the worker processes it supervises."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time

from aisinger.service.app import create_app, report_requeued
from aisinger.service.config import ServiceConfig
from aisinger.service.store import Store
from aisinger.service.worker import worker_name

log = logging.getLogger("aisinger.service")
LOCAL_WORKER_TOKEN = "local-workers"
"""Name of the worker token ``serve`` makes for its own workers (replaced at each start)."""


class WorkerPool:
    """Starts ``n`` worker processes and restarts any that exit (e.g. killed with -9)."""

    def __init__(self, cfg: ServiceConfig, token: str, n: int, store: Store | None = None):
        self.cfg, self.token, self.n, self.store = cfg, token, n, store
        self.procs: list[subprocess.Popen | None] = [None] * n
        self.started = [0.0] * n
        self.quick_exits = [0] * n
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def _spawn(self, i: int) -> subprocess.Popen:
        env = dict(os.environ, AISINGER_SERVE_TOKEN=self.token,
                   OMP_NUM_THREADS=str(self.cfg.worker_threads))
        cmd = [sys.executable, "-m", "aisinger.service.worker", "--server", self.cfg.url,
               "--queue", self.cfg.queue_url, "--cache", str(self.cfg.data_dir / "worker-cache"),
               "--parent-pid", str(os.getpid()), "--threads", str(self.cfg.worker_threads),
               "--nice", str(self.cfg.worker_nice)]
        logf = open(self.cfg.data_dir / f"worker-{i}.log", "ab")
        p = subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        logf.close()
        log.info("worker %d started (pid %d)", i, p.pid)
        self.started[i] = time.monotonic()
        return p

    def start(self) -> None:
        for i in range(self.n):
            self.procs[i] = self._spawn(i)
        self._thread = threading.Thread(target=self._watch, daemon=True, name="worker-pool")
        self._thread.start()

    def _watch(self) -> None:
        retry_at = [0.0] * self.n
        while not self._stop.wait(0.5):
            with self._lock:
                for i, p in enumerate(self.procs):
                    if p is None or p.poll() is None or self._stop.is_set():
                        continue
                    now = time.monotonic()
                    if retry_at[i] == 0.0:  # a new exit: restart now, or later if it keeps
                        quick = now - self.started[i] < 10  # dying right after starting
                        self.quick_exits[i] = self.quick_exits[i] + 1 if quick else 0
                        retry_at[i] = now + (min(60.0, 2.0 ** self.quick_exits[i]) if quick
                                             else 0.0)
                        log.warning("worker %d (pid %d) exited with %s; restarting (see "
                                    "worker-%d.log)", i, p.pid, p.returncode, i)
                        if self.store is not None:  # its job goes back to its place in line
                            # now, before a restarted worker can claim the next one
                            report_requeued(*self.store.requeue_expired(
                                self.cfg.max_attempts, worker=worker_name(p.pid)),
                                self.cfg.max_attempts, f"pid {p.pid} exited")
                    if now >= retry_at[i]:
                        retry_at[i] = 0.0
                        self.procs[i] = self._spawn(i)

    def pids(self) -> list[int]:
        with self._lock:
            return [p.pid for p in self.procs if p is not None]

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            for p in self.procs:
                if p is not None and p.poll() is None:
                    p.terminate()
            for p in self.procs:
                if p is not None:
                    try:
                        p.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        p.kill()


def serve(cfg: ServiceConfig, log_level: str = "info") -> None:
    """Run the server (and ``cfg.workers`` local workers) until interrupted."""
    import uvicorn

    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    cfg.save()
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    store = Store(cfg.db_path)
    pool = None
    app = create_app(cfg)
    if cfg.workers:
        store.revoke_tokens_named(LOCAL_WORKER_TOKEN, "worker")
        _, token = store.create_token(LOCAL_WORKER_TOKEN, "worker")
        pool = WorkerPool(cfg, token, cfg.workers, store)
        app.state.worker_pool = pool
    server = uvicorn.Server(uvicorn.Config(app, host=cfg.host, port=cfg.port,
                                           log_level="warning", access_log=False,
                                           timeout_graceful_shutdown=5))
    if pool:
        pool.start()
    log.info("aisinger serve on http://%s:%d (queue: %s, %d local worker(s))", cfg.host,
             cfg.port, cfg.queue if cfg.queue == "sqlite" else "redis", cfg.workers)
    try:
        server.run()
    finally:
        if pool:
            pool.stop()
        time.sleep(0.1)
