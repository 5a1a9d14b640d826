"""Celery's queue throughput, measured as crates/kai-jobs/examples/queue_throughput.rs measures
kai's: JOBS no-op tasks sent by PRODUCERS threads with no worker running, then a worker with
WORKERS processes (prefork, Celery's default pool) started to run them. Prints one JSON line
with the same fields.

    celery_bench.py PORT JOBS WORKERS PRODUCERS

- enqueue_per_s: tasks over the time from the first `delay()` to the last one's return;
- complete_per_s: tasks after the first over the time between the first and the last task
  recorded done (`date_done` in the result backend), which leaves out the worker's start;
- drain_s: from starting the worker to every task recorded done (a process start included).

Redis runs without persistence (`--save ''`), so nothing here waits for a disk; kai's
figures include its database commits.
"""

import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main():
    port, jobs, workers, producers = sys.argv[1], *map(int, sys.argv[2:5])
    os.environ["BENCH_REDIS_PORT"] = port
    sys.path.insert(0, str(HERE))
    import redis
    from celery_app import noop

    broker = redis.Redis(port=int(port), db=0)
    results = redis.Redis(port=int(port), db=1)
    broker.flushdb()
    results.flushdb()

    def produce(count):
        for _ in range(count):
            noop.delay()

    shares = [jobs // producers + (1 if i < jobs % producers else 0) for i in range(producers)]
    threads = [threading.Thread(target=produce, args=(n,)) for n in shares]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    enqueue = time.perf_counter() - started

    celery = Path(sys.executable).with_name("celery")
    log = open(os.environ.get("BENCH_CELERY_LOG", os.devnull), "ab")
    started = time.perf_counter()
    worker = subprocess.Popen(
        [
            str(celery), "-A", "celery_app", "worker",
            "--pool", "prefork", "--concurrency", str(workers),
            "--loglevel", "WARNING",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ],
        cwd=HERE,
        env=os.environ.copy(),
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 600
        while results.dbsize() < jobs:
            if time.monotonic() > deadline or worker.poll() is not None:
                sys.exit(
                    f"celery finished {results.dbsize()} of {jobs} tasks; its log: "
                    f"{os.environ.get('BENCH_CELERY_LOG', '(none: set BENCH_CELERY_LOG)')}"
                )
            time.sleep(0.002)
        drain = time.perf_counter() - started
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        log.close()

    done = []
    keys = list(results.scan_iter(match="celery-task-meta-*", count=10_000))
    for start in range(0, len(keys), 5_000):
        for meta in results.mget(keys[start:start + 5_000]):
            done.append(datetime.fromisoformat(json.loads(meta)["date_done"]))
    span = (max(done) - min(done)).total_seconds()
    print(json.dumps({
        "system": "celery",
        "backend": "redis",
        "jobs": jobs,
        "workers": workers,
        "producers": producers,
        "enqueue_per_s": round(jobs / enqueue),
        "complete_per_s": round((jobs - 1) / span),
        "drain_s": round(drain, 3),
    }, separators=(",", ":")))


if __name__ == "__main__":
    main()
