"""The service database (SQLite, WAL): API tokens, songs and jobs.

The jobs table is the single source of truth for a job's state; the queue engine only carries
job IDs to workers (at least once).  Every state change is one transaction guarded by the
state it expects, so duplicate deliveries and lost workers cannot finish a job twice:

* ``queued``  → ``running``   :meth:`Store.claim_next` (oldest first; new lease,
  attempt + 1)
* ``running`` → ``done``      :meth:`Store.finish` (only with the current lease)
* ``running`` → ``queued``    :meth:`Store.requeue_expired` (lease expired: worker lost)
* ``running`` → ``failed``    :meth:`Store.fail` / attempts used up
* any         → ``deleted``   :meth:`Store.delete_job`

Tokens are stored as SHA-256 digests of 256-bit random secrets; the secret is shown once.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from aisinger.errors import AisingerError

ROLES = ("user", "admin", "worker")
TOKEN_PREFIX = "ais_"
STATES = ("queued", "running", "done", "failed", "deleted")

SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, digest TEXT NOT NULL UNIQUE,
    created REAL NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS songs (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, owner TEXT NOT NULL, file TEXT NOT NULL,
    format TEXT NOT NULL, seconds REAL NOT NULL, sr INTEGER NOT NULL, channels INTEGER NOT NULL,
    bytes INTEGER NOT NULL, sha256 TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, song_id TEXT NOT NULL,
    voice_id TEXT NOT NULL, owner TEXT NOT NULL, options TEXT NOT NULL, format TEXT NOT NULL,
    state TEXT NOT NULL, stage TEXT, progress REAL NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0, lease TEXT, lease_until REAL, worker TEXT,
    enqueued_at REAL, created REAL NOT NULL, started REAL, finished REAL, result TEXT,
    result_sha256 TEXT, info TEXT, error TEXT);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, seq);
"""


def hash_token(token: str) -> str:
    """SHA-256 hex digest of a token (tokens are 256-bit random, so no salt/KDF is needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_id() -> str:
    """A server-generated identifier (32 hex digits); the only names files get."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Principal:
    """Who made a request: token ID, name and role."""

    token_id: str
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _row(cur: sqlite3.Cursor, row: tuple) -> dict:
    return {d[0]: v for d, v in zip(cur.description, row)}


class Store:
    """Thread-safe access to ``service.db``: one connection per thread (autocommit; writes in
    explicit ``BEGIN IMMEDIATE`` transactions), WAL so readers never wait for the writer."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    @contextlib.contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.row_factory = _row
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        yield db

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT, rolled back on error)."""
        with self._conn() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # ------------------------------------------------------------------------------ tokens

    def create_token(self, name: str, role: str = "user") -> tuple[str, str]:
        """A new token: returns ``(token_id, secret)``; only the digest is stored."""
        if role not in ROLES:
            raise AisingerError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
        name = (name or role).strip()[:80]
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        tid = new_id()[:12]
        with self._tx() as db:
            db.execute("INSERT INTO tokens(id, name, role, digest, created) VALUES (?,?,?,?,?)",
                       (tid, name, role, hash_token(secret), time.time()))
        return tid, secret

    def authenticate(self, secret: str | None) -> Principal | None:
        """The principal of a presented token, or None (unknown, revoked, malformed)."""
        if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
            return None
        digest = hash_token(secret)
        with self._conn() as db:
            row = db.execute("SELECT id, name, role, digest FROM tokens WHERE digest=? AND "
                             "revoked=0", (digest,)).fetchone()
        if row is None or not hmac.compare_digest(row["digest"], digest):
            return None
        return Principal(row["id"], row["name"], row["role"])

    def list_tokens(self) -> list[dict]:
        with self._conn() as db:
            return db.execute("SELECT id, name, role, created, revoked FROM tokens "
                              "ORDER BY created").fetchall()

    def revoke_token(self, token_id: str) -> bool:
        with self._tx() as db:
            return db.execute("UPDATE tokens SET revoked=1 WHERE id=?",
                              (token_id,)).rowcount > 0

    def revoke_tokens_named(self, name: str, role: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE tokens SET revoked=1 WHERE name=? AND role=?", (name, role))

    # ------------------------------------------------------------------------------- songs

    def add_song(self, song: dict) -> dict:
        with self._tx() as db:
            db.execute("INSERT INTO songs(id, title, owner, file, format, seconds, sr, channels,"
                       " bytes, sha256, created) VALUES (:id,:title,:owner,:file,:format,"
                       ":seconds,:sr,:channels,:bytes,:sha256,:created)", song)
        return song

    def get_song(self, song_id: str) -> dict | None:
        with self._conn() as db:
            return db.execute("SELECT * FROM songs WHERE id=?", (song_id,)).fetchone()

    def list_songs(self) -> list[dict]:
        with self._conn() as db:
            return db.execute("SELECT * FROM songs ORDER BY created DESC").fetchall()

    def delete_song(self, song_id: str) -> dict | None:
        with self._tx() as db:
            row = db.execute("SELECT * FROM songs WHERE id=?", (song_id,)).fetchone()
            if row is not None:
                db.execute("DELETE FROM songs WHERE id=?", (song_id,))
        return row

    # -------------------------------------------------------------------------------- jobs

    def add_job(self, song_id: str, voice_id: str, owner: str, options: dict,
                fmt: str) -> dict:
        jid = new_id()
        with self._tx() as db:
            db.execute("INSERT INTO jobs(id, song_id, voice_id, owner, options, format, state, "
                       "created) VALUES (?,?,?,?,?,?, 'queued', ?)",
                       (jid, song_id, voice_id, owner, json.dumps(options), fmt, time.time()))
        return self.get_job(jid)

    def mark_enqueued(self, job_id: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE jobs SET enqueued_at=? WHERE id=?", (time.time(), job_id))

    def get_job(self, job_id: str) -> dict | None:
        with self._conn() as db:
            job = db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
            if job is None:
                return None
            job["position"] = self._position(db, job)
        return job

    @staticmethod
    def _position(db: sqlite3.Connection, job: dict) -> int | None:
        """1 = next to run; 0 = running; None = finished."""
        if job["state"] == "running":
            return 0
        if job["state"] != "queued":
            return None
        ahead = db.execute("SELECT COUNT(*) AS n FROM jobs WHERE state='queued' AND seq<?",
                           (job["seq"],)).fetchone()["n"]
        return ahead + 1

    def list_jobs(self, owner: str | None = None, states: tuple[str, ...] | None = None,
                  limit: int = 200) -> list[dict]:
        q, args = "SELECT * FROM jobs WHERE 1=1", []
        if owner is not None:
            q += " AND owner=?"
            args.append(owner)
        if states:
            q += f" AND state IN ({','.join('?' * len(states))})"
            args += list(states)
        q += " ORDER BY seq DESC LIMIT ?"
        args.append(int(limit))
        with self._conn() as db:
            jobs = db.execute(q, args).fetchall()
            queued = [r["seq"] for r in db.execute(
                "SELECT seq FROM jobs WHERE state='queued' ORDER BY seq").fetchall()]
        rank = {s: i + 1 for i, s in enumerate(queued)}
        for j in jobs:
            j["position"] = 0 if j["state"] == "running" else rank.get(j["seq"])
        return jobs

    def counts(self) -> dict:
        with self._conn() as db:
            rows = db.execute("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state").fetchall()
        return {r["state"]: r["n"] for r in rows}

    def claim(self, job_id: str, worker: str, lease_s: float) -> dict | None:
        """queued → running with a new lease (or a running job whose lease expired)."""
        lease, now = secrets.token_hex(16), time.time()
        with self._tx() as db:
            n = db.execute("UPDATE jobs SET state='running', lease=?, lease_until=?, worker=?, "
                           "attempts=attempts+1, started=?, stage='claimed', progress=0 "
                           "WHERE id=? AND (state='queued' OR (state='running' AND "
                           "lease_until<?))",
                           (lease, now + lease_s, worker[:120], now, job_id, now)).rowcount
            if n == 0:
                return None
            return db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()

    def claim_next(self, worker: str, lease_s: float) -> dict | None:
        """The oldest queued job (lowest ``seq``) → running with a new lease; None when no job
        is queued.  Workers claim in submission order whatever message woke them, so the
        queue position shown (rank by ``seq``) is the true order, and a job requeued after
        its worker was lost keeps its place instead of going behind the queue engine's
        newer messages."""
        lease, now = secrets.token_hex(16), time.time()
        with self._tx() as db:
            row = db.execute("SELECT id FROM jobs WHERE state='queued' ORDER BY seq LIMIT 1"
                             ).fetchone()
            if row is None:
                return None
            db.execute("UPDATE jobs SET state='running', lease=?, lease_until=?, worker=?, "
                       "attempts=attempts+1, started=?, stage='claimed', progress=0 "
                       "WHERE id=?", (lease, now + lease_s, worker[:120], now, row["id"]))
            return db.execute("SELECT * FROM jobs WHERE id=?", (row["id"],)).fetchone()

    def queued_count(self) -> int:
        with self._conn() as db:
            return db.execute("SELECT COUNT(*) AS n FROM jobs WHERE state='queued'"
                              ).fetchone()["n"]

    def heartbeat(self, job_id: str, lease: str, lease_s: float, stage: str | None,
                  progress: float | None) -> bool:
        """Extend the lease and record progress; False when the lease is no longer held."""
        with self._tx() as db:
            return db.execute(
                "UPDATE jobs SET lease_until=?, stage=COALESCE(?, stage), "
                "progress=COALESCE(?, progress) WHERE id=? AND lease=? AND state='running'",
                (time.time() + lease_s, stage, progress, job_id, lease)).rowcount > 0

    def lease_holder(self, job_id: str, lease: str) -> dict | None:
        with self._conn() as db:
            return db.execute("SELECT * FROM jobs WHERE id=? AND lease=? AND state='running'",
                              (job_id, lease)).fetchone()

    def finish(self, job_id: str, lease: str, result: str, sha256: str, info: dict) -> bool:
        """running → done in one transaction, only for the current lease holder."""
        with self._tx() as db:
            return db.execute(
                "UPDATE jobs SET state='done', result=?, result_sha256=?, info=?, finished=?, "
                "progress=1, stage='done', lease=NULL, lease_until=NULL WHERE id=? AND lease=? "
                "AND state='running'",
                (result, sha256, json.dumps(info), time.time(), job_id, lease)).rowcount > 0

    def fail(self, job_id: str, lease: str, message: str, retry: bool,
             max_attempts: int = 1) -> str | None:
        """The worker reports an error: failed (or queued again when ``retry`` and attempts
        remain).  Returns the new state, or None without the lease."""
        with self._tx() as db:
            job = db.execute("SELECT attempts FROM jobs WHERE id=? AND lease=? AND "
                             "state='running'", (job_id, lease)).fetchone()
            if job is None:
                return None
            state = "queued" if retry and job["attempts"] < max_attempts else "failed"
            db.execute("UPDATE jobs SET state=?, error=?, lease=NULL, lease_until=NULL, "
                       "enqueued_at=NULL, finished=CASE WHEN ?='failed' THEN ? END WHERE id=?",
                       (state, message[:500], state, time.time(), job_id))
            return state

    def requeue_expired(self, max_attempts: int, worker: str | None = None
                        ) -> tuple[list[str], list[str]]:
        """Jobs whose worker stopped sending heartbeats (or, with ``worker``, whose worker is
        known to be dead: its jobs at once, lease or not): queued again (enqueued_at cleared,
        so the reaper enqueues them) or failed after ``max_attempts``.  Returns
        ``(requeued IDs, failed IDs)``."""
        now = time.time()
        with self._tx() as db:
            rows = db.execute("SELECT id, attempts FROM jobs WHERE state='running' AND "
                              "(lease_until<? OR worker=?)", (now, worker)).fetchall()
            again = [r["id"] for r in rows if r["attempts"] < max_attempts]
            dead = [r["id"] for r in rows if r["attempts"] >= max_attempts]
            for jid in again:
                db.execute("UPDATE jobs SET state='queued', lease=NULL, lease_until=NULL, "
                           "stage='requeued', progress=0, enqueued_at=NULL, error=? WHERE id=?",
                           ("worker lost; retrying", jid))
            for jid in dead:
                db.execute("UPDATE jobs SET state='failed', lease=NULL, lease_until=NULL, "
                           "finished=?, error=? WHERE id=?",
                           (now, f"worker lost {max_attempts} times", jid))
        return again, dead

    def to_enqueue(self, stale_before: float) -> list[tuple[str, float | None]]:
        """Queued jobs never enqueued, or enqueued before ``stale_before``: ``(id,
        enqueued_at)``."""
        with self._conn() as db:
            rows = db.execute("SELECT id, enqueued_at FROM jobs WHERE state='queued' AND "
                              "(enqueued_at IS NULL OR enqueued_at<?) ORDER BY seq",
                              (stale_before,)).fetchall()
        return [(r["id"], r["enqueued_at"]) for r in rows]

    def delete_job(self, job_id: str) -> dict | None:
        """Any state → deleted (a running job's worker loses its lease and stops)."""
        with self._tx() as db:
            row = db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
            if row is not None:
                db.execute("UPDATE jobs SET state='deleted', lease=NULL, lease_until=NULL, "
                           "finished=? WHERE id=?", (time.time(), job_id))
        return row
