"""The request service (``aisinger serve``): HTTP API, durable job queue, web UI.

The top layer of aisinger, beside the CLI: nothing imports it.  Pieces, following a request::

    config.py   ServiceConfig — the data folder, limits, queue engine (saved as service.json)
    store.py    Store — SQLite: API tokens (hashed), songs, jobs (the single source of truth)
    media.py    upload sniffing (ffprobe via aisinger.io.audio), voice folders and archives
    queue.py    the huey queue (SqliteHuey embedded, RedisHuey to scale out) with a JSON
                serializer: messages carry only a job ID, never a pickle
    app.py      create_app(config) — the FastAPI app: /api/..., the web UI, the reaper
    worker.py   a worker process: takes job IDs from the queue, claims the job from the
                server over HTTP (a lease), runs it, uploads the result
    jobs.py     the job functions: a real cover (aisinger.pipelines.cover), or labelling (tests)
    server.py   serve(config) — uvicorn + the supervised worker processes

See docs/service.md for the API, the durability design and scale-out.
"""

from aisinger.service.config import ServiceConfig

__all__ = ["ServiceConfig"]
