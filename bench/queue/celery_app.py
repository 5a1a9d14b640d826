"""The Celery side of bench/queue: one no-op task, Redis as broker (db 0) and result backend
(db 1), so that every finished task is recorded, as kai records every finished job.

The port comes from BENCH_REDIS_PORT; celery_bench.py sets it for itself and for the worker.
"""

import os

from celery import Celery

PORT = os.environ["BENCH_REDIS_PORT"]

app = Celery(
    "kai_bench",
    broker=f"redis://127.0.0.1:{PORT}/0",
    backend=f"redis://127.0.0.1:{PORT}/1",
)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="noop")
def noop():
    return None
