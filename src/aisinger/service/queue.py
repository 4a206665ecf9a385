"""The queue engine: huey on SQLite (embedded) or Redis (several machines).

Messages carry one job ID.  They are serialized as JSON, never pickled (huey's default is
pickle, and anyone who can write to a shared Redis could otherwise run code on the workers).
Delivery is *at least once*: the jobs table (:mod:`aisinger.service.store`) decides who runs a
job, so a duplicate message is harmless and a lost one is re-sent by the server's reaper.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
from collections.abc import Callable

from aisinger.errors import AisingerError

TASK_NAME = "aisinger.run_job"
QUEUE_NAME = "aisinger-jobs"


@functools.cache
def serializer_class() -> type:
    """The JSON message serializer, a subclass of huey's ``Serializer`` (built on first use:
    huey is imported only where a queue is made, not by every command that imports this)."""
    from huey.registry import Message
    from huey.serializer import Serializer

    class JsonSerializer(Serializer):
        """Huey messages as JSON; only plain data (our messages) can be (de)serialized."""

        def _serialize(self, data) -> bytes:
            if isinstance(data, Message):
                d = data._asdict()
                for k in ("eta", "expires_resolved"):
                    if isinstance(d[k], _dt.datetime):
                        d[k] = {"dt": d[k].isoformat()}
                if d.get("chord_config") is not None or d.get("on_complete") or d.get("on_error"):
                    raise TypeError("aisinger queue messages carry no chords or callbacks")
                return json.dumps({"message": d}).encode()
            return json.dumps({"data": data}).encode()

        def _deserialize(self, data: bytes):
            doc = json.loads(data.decode("utf-8"))
            if "message" not in doc:
                return doc["data"]
            d = doc["message"]
            for k in ("eta", "expires_resolved"):
                if isinstance(d.get(k), dict):
                    d[k] = _dt.datetime.fromisoformat(d[k]["dt"])
            d["args"] = tuple(d.get("args") or ())
            d["kwargs"] = dict(d.get("kwargs") or {})
            unknown = set(d) - set(Message._fields)
            if unknown:
                raise ValueError(f"unexpected message fields {sorted(unknown)}")
            return Message(**d)

    return JsonSerializer


def json_serializer():
    """A serializer instance for huey: messages as JSON, never pickled."""
    return serializer_class()()


def make_huey(queue_url: str):
    """A huey instance for ``sqlite://PATH`` or a ``redis://`` URL (no result store)."""
    from huey import RedisHuey, SqliteHuey

    if queue_url.startswith("sqlite://"):
        return SqliteHuey(QUEUE_NAME, filename=queue_url[len("sqlite://"):], results=False,
                          serializer=json_serializer(), timeout=30)
    if queue_url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey(QUEUE_NAME, url=queue_url, results=False, serializer=json_serializer())
    raise AisingerError(f"unknown queue URL {queue_url!r} (sqlite://PATH or redis://HOST:PORT)")


class JobQueue:
    """Enqueue job IDs; with a ``handler`` (in a worker) the task runs it."""

    def __init__(self, queue_url: str, handler: Callable[[str], None] | None = None):
        self.url = queue_url
        self.huey = make_huey(queue_url)

        def run_job(job_id: str) -> None:
            if handler is None:
                raise RuntimeError("this process only enqueues jobs")
            handler(job_id)

        self.task = self.huey.task(retries=0, name=TASK_NAME)(run_job)

    def enqueue(self, job_id: str) -> None:
        self.task(job_id)

    def pending_ids(self) -> set[str]:
        """Job IDs with a message waiting in the engine."""
        out = set()
        for task in self.huey.pending():
            if task.args:
                out.add(str(task.args[0]))
        return out

    def pending_count(self) -> int:
        return self.huey.pending_count()

    def consumer(self, poll_max_s: float = 0.5):
        """A one-thread huey consumer for this process (workers)."""
        return self.huey.create_consumer(workers=1, worker_type="thread", periodic=False,
                                         initial_delay=0.05, backoff=1.3, max_delay=poll_max_s,
                                         check_worker_health=False)
