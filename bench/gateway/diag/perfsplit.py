#!/usr/bin/env python3
"""Split a kai CPU profile into coarse categories (stdlib only).

    perf record -F 2000 -g --call-graph dwarf,16384 -p KAI_PID -o kai.data -- sleep 10
    perf script -i kai.data -F comm,tid,period,ip,sym --no-inline > kai.txt
    diag/perfsplit.py kai.txt

Each sample goes to the first category whose pattern appears anywhere in its stack; samples
on threads other than tokio's workers are SQLite's (sqlx runs one thread per connection).
DWARF unwinding stops in deep async stacks, so the split is by where the CPU was spent, not
an exact attribution: good to a few percent.
"""

from __future__ import annotations

import collections
import sys

DB_WRITE = ["sqlite3BtreeInsert", "sqlite3VdbeHalt", "pagerWalFrames", "Checkpoint", "sqlite3BtreeCommit", "unixSync"]
RULES = [  # (category, on SQLite's threads?, patterns)
    ("SQLite writes: usage records (insert, commit, WAL, checkpoints)", True, DB_WRITE),
    ("SQLite reads and sqlx's worker threads: API-key lookup, page-cache reloads, hand-offs", True, [""]),
    ("router: scan of the per-minute token window (Ticket::settle_tokens)", False, ["settle_tokens"]),
    ("request log (tracing to the log file)", False, ["tracing_subscriber", "tracing_core::"]),
    ("auth extractor, async side (sqlx pool, channel to SQLite)", False, ["kai_server::extract::Auth", "kai_auth::"]),
    ("accounting, async side (metrics, budgets, queueing usage records)", False,
     ["kai_gateway::accounting", "insert_usage", "UsageWriter", "prometheus_client"]),
    ("upstream call: reqwest/hyper client and its pool", False,
     ["reqwest::", "hyper_util::client", "hyper::client", "kai_models::http"]),
    ("JSON: request parse, conversion, response and SSE encoding", False,
     ["serde_json", "kai_models::wire", "kai_proto::", "axum::json", "ApiJson", "ChunkEncoder", "eventsource"]),
    ("HTTP server: hyper h1, axum routing and middleware", False,
     ["hyper::proto::h1", "hyper::server", "axum::", "tower_http", "kai_server::middleware"]),
    ("tokio runtime: scheduling, timers, polling", False, ["tokio::runtime"]),
]


def classify(comm: str, stack: list[str]) -> str:
    text = "\n".join(stack)
    on_db = not comm.startswith("tokio-rt-worker")
    for name, db, patterns in RULES:
        if db == on_db and any(p in text for p in patterns):
            return name
    return "other (kernel, allocator, unattributed)"


def main(path: str) -> int:
    counts: collections.Counter[str] = collections.Counter()
    comm, stack = None, []
    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                if comm is not None:
                    counts[classify(comm, stack)] += 1
                comm, stack = None, []
            elif not line[0].isspace():
                comm, stack = line.split()[0], []
            else:
                stack.append(line.strip())
    if comm is not None:
        counts[classify(comm, stack)] += 1
    total = sum(counts.values())
    if not total:
        print("no samples", file=sys.stderr)
        return 1
    for name, n in counts.most_common():
        print(f"{n / total:6.1%}  {name}")
    print(f"({total:,} samples)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
