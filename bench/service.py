"""Request-service benchmark: many concurrent small cover jobs on loopback.

    .venv/bin/python bench/service.py [--runs 2:200,1:40] [--song-seconds 5]
                                      [--max-minutes 45] [--json bench/results/service.json]

For each run ``WORKERS:JOBS`` a fresh ``aisinger serve`` (SQLite queue, WORKERS local
workers, 1 torch thread each) is started on a free loopback port; a load generator submits
JOBS cover requests at once (concurrently, httpx async) of 5-second lab songs (a lab voice
over a fluidsynth accompaniment; 8 distinct songs) in a tiny voice trained for 20 steps,
while 8 pollers (``--pollers``) call ``GET /api/jobs/{id}`` of random unfinished jobs, each
every 50 ms (up to 160 calls/s, more than 100 viewers' pages polling once a second), and
record the latency of every status call.  Workers run at ``--worker-nice`` (default 0).  When all jobs are finished (or the run's time
limit is reached) it checks:

* lost: jobs not done at the end;  duplicated: jobs with more than one output file, or
  result files that belong to no job;  retried: jobs that needed more than one attempt
  (none are expected: no worker is killed here);
* labelled: every result passes ``aisinger.label.detect_file`` (valid AIGC metadata and the
  watermark, with the voice identified).

Prints a table and writes JSON (with the machine's load average before and after: the CPU is
shared).  Loopback only; bounded in count and time; stops by itself.

Targets (issue 8): 0 lost, 0 duplicated, all labelled; p95 status latency ≤ 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the service test helpers: server, songs, voice

POLL_GAP_S = 0.05
N_SONGS = 8


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q)) if values else float("nan")


async def load(url: str, secret: str, song_ids: list[str], voice: str, n_jobs: int,
               deadline: float, pollers: int) -> dict:
    import httpx

    h = {"Authorization": f"Bearer {secret}"}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, headers=h, timeout=60, limits=limits) as c:
        t0 = time.monotonic()

        async def submit(i: int) -> str:
            r = await c.post("/api/jobs", json={"song_id": song_ids[i % len(song_ids)],
                                                "voice_id": voice, "format": "mp3"})
            r.raise_for_status()
            return r.json()["id"]

        ids = await asyncio.gather(*(submit(i) for i in range(n_jobs)))
        t_submitted = time.monotonic() - t0
        state = {i: "queued" for i in ids}
        finished_at: dict[str, float] = {}
        latencies: list[float] = []
        errors = 0
        rng = random.Random(0)

        async def poller(k: int) -> None:
            nonlocal errors
            while time.monotonic() < deadline:
                open_ids = [i for i, s in state.items() if s not in ("done", "failed")]
                if not open_ids:
                    return
                jid = rng.choice(open_ids)
                t = time.perf_counter()
                try:
                    r = await c.get(f"/api/jobs/{jid}")
                    latencies.append(time.perf_counter() - t)
                    s = r.json()["state"]
                    if s in ("done", "failed") and jid not in finished_at:
                        finished_at[jid] = time.monotonic() - t0
                    state[jid] = s
                except Exception:  # noqa: BLE001 - counted
                    errors += 1
                await asyncio.sleep(POLL_GAP_S)

        await asyncio.gather(*(poller(k) for k in range(pollers)))
        final = {}
        for jid in ids:  # the final truth, one call each
            final[jid] = (await c.get(f"/api/jobs/{jid}")).json()
        wall = max(finished_at.values()) if finished_at else time.monotonic() - t0
    return {"ids": ids, "final": final, "latencies": latencies, "errors": errors,
            "submit_s": t_submitted, "wall_s": wall, "finished_at": finished_at}


def run_once(workers: int, n_jobs: int, songs: list[Path], voice_dir: Path, work: Path,
             max_s: float, job_kind: str = "cover", nice: int = 0, pollers: int = 8) -> dict:
    import shutil

    from aisinger.label import detect_file
    from service_util import Server, client, token, upload

    data = work / f"w{workers}"
    shutil.copytree(voice_dir, data / "voices" / voice_dir.name)
    (data / "service.json").write_text(json.dumps({
        "data_dir": str(data), "job_kind": job_kind, "workers": workers, "worker_threads": 1,
        "lease_s": 30.0, "worker_nice": nice}))
    srv = Server(data).start()
    try:
        secret = token(data, "bench")
        with client(srv, secret) as c:
            song_ids = [upload(c, s, s.stem).json()["id"] for s in songs]
        load_avg0 = os.getloadavg()
        res = asyncio.run(load(srv.url, secret, song_ids, voice_dir.name, n_jobs,
                               time.monotonic() + max_s, pollers))
        load_avg1 = os.getloadavg()
    finally:
        srv.stop()
    final = res["final"]
    done = [j for j in final.values() if j["state"] == "done"]
    files = sorted(p.name for p in (data / "results").iterdir())
    expected = sorted(f"{j['id']}.mp3" for j in done)
    per_job = {}
    for f in files:
        per_job.setdefault(f.split(".")[0], []).append(f)
    dup = sum(1 for v in per_job.values() if len(v) > 1) + len(set(per_job) - set(final))

    def labelled_ok(j: dict) -> bool:
        d = detect_file(data / "results" / f"{j['id']}.mp3",
                        known_voices={voice_dir.name: voice_dir.name})
        return d.metadata.valid and d.watermark.present and d.voice == voice_dir.name

    labelled = sum(labelled_ok(j) for j in done)
    lat = res["latencies"]
    cover_s = [sum((j["info"] or {}).get("seconds", {}).values()) for j in done]
    return {"workers": workers, "jobs": n_jobs, "done": len(done),
            "failed": sum(j["state"] == "failed" for j in final.values()),
            "lost": n_jobs - len(done), "duplicated": dup, "labelled": labelled,
            "retried": sum(1 for j in done if j["attempts"] != 1), "job_kind": job_kind,
            "files_match": files == expected,
            "status_calls": len(lat), "status_errors": res["errors"],
            "status_p50_ms": pct(lat, 50), "status_p95_ms": pct(lat, 95),
            "status_max_ms": pct(lat, 100), "submit_s": res["submit_s"],
            "wall_s": res["wall_s"], "jobs_per_min": 60.0 * len(done) / res["wall_s"],
            "cover_s_mean": float(np.mean(cover_s)) if cover_s else None,
            "load_avg_start": load_avg0, "load_avg_end": load_avg1,
            "errors": sorted({j["error"] for j in final.values() if j.get("error")})[:5]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default="2:200,1:40", help="WORKERS:JOBS,... (default 2:200,1:40)")
    ap.add_argument("--song-seconds", type=float, default=5.0)
    ap.add_argument("--max-minutes", type=float, default=45.0, help="time limit per run")
    ap.add_argument("--json", type=Path, default=ROOT / "bench/results/service.json")
    ap.add_argument("--pollers", type=int, default=8, help="concurrent status pollers")
    ap.add_argument("--worker-nice", type=int, default=0,
                    help="niceness of the workers (serve's default is 10; 0 here, so that on a "
                         "shared machine the workers get a fair share against other programs)")
    ap.add_argument("--job-kind", default="cover", choices=("cover", "label"),
                    help="label: the quick labelling job, to try the harness (not the target)")
    a = ap.parse_args()
    os.environ.setdefault("AISINGER_PROGRESS", "0")
    from service_util import make_song, train_tiny_voice

    runs = [tuple(int(x) for x in r.split(":")) for r in a.runs.split(",")]
    with tempfile.TemporaryDirectory(prefix="aisinger-bench-service-") as tmp:
        work = Path(tmp)
        t = time.monotonic()
        voice = train_tiny_voice(work / "voice", steps=20)
        songs = [make_song(work / f"song{i}.wav", a.song_seconds, seed=100 + i,
                           voice=("flite-rms", "flite-awb")[i % 2]) for i in range(N_SONGS)]
        print(f"prepared voice + {N_SONGS} songs in {time.monotonic() - t:.0f} s",
              file=sys.stderr)
        rows = []
        for workers, n in runs:
            print(f"run: {workers} worker(s), {n} jobs ...", file=sys.stderr)
            rows.append(run_once(workers, n, songs, voice, work, a.max_minutes * 60, a.job_kind,
                                 a.worker_nice, a.pollers))
            print(json.dumps(rows[-1]), file=sys.stderr)
    hdr = ("workers", "jobs", "done", "lost", "dup", "labelled", "status p50 ms",
           "status p95 ms", "jobs/min", "cover s", "load avg")
    print("| " + " | ".join(hdr) + " |\n|" + "---|" * len(hdr))
    for r in rows:
        print(f"| {r['workers']} | {r['jobs']} | {r['done']} | {r['lost']} | {r['duplicated']} | "
              f"{r['labelled']} | {r['status_p50_ms']:.1f} | {r['status_p95_ms']:.1f} | "
              f"{r['jobs_per_min']:.2f} | {r['cover_s_mean'] or float('nan'):.1f} | "
              f"{r['load_avg_start'][0]:.1f}→{r['load_avg_end'][0]:.1f} |")
    out = {"runs": rows, "job_kind": a.job_kind, "song_seconds": a.song_seconds,
           "pollers": a.pollers, "worker_nice": a.worker_nice,
           "poll_gap_s": POLL_GAP_S, "cpus": os.cpu_count(), "machine": platform.machine(),
           "python": platform.python_version(),
           "targets": {"lost": 0, "duplicated": 0, "status_p95_ms": 50}}
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(out, indent=2))
    print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
