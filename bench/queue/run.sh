#!/usr/bin/env bash
# bench/queue/run.sh -- kai's job queue beside Celery with Redis (no-op jobs enqueued and run),
# and the scheduler's accuracy (how late a scheduled job starts).
#
# Usage: bench/queue/run.sh [--postgres URL]
#   --postgres URL  also run kai on this PostgreSQL database (each run makes a schema of its
#                   own and drops it), e.g. postgres://kai:kai@127.0.0.1:55432/kai_test
#
# Environment: JOBS (20000 per run), WORKERS (4: kai's concurrency, Celery's prefork
# processes), PRODUCERS ("1 8": concurrent enqueuers, one run each), ROUNDS (3), PARTS
# ("throughput accuracy"), SCHEDULES (1000 due at once) and FIRES (60 fires of an `every 1s`
# schedule) for accuracy, REDIS_PORT (56390), KAI_BENCH_PROFILE (release), KAI_BENCH_CACHE
# (~/.cache/kai-bench: results), PYTHON (python3).
#
# The runs take turns, never two at once, their order rotating each round: kai on SQLite, kai
# on PostgreSQL, Celery. Redis comes from Debian (apt-get install redis-server, if missing) and
# runs without persistence; Celery (requirements.txt, exact pins) goes into
# ${CARGO_TARGET_DIR:-target}/bench-queue-venv. Each run prints a JSON line; the summary is
# the median of the rounds, as Markdown, kept with the lines in $KAI_BENCH_CACHE/results/.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
VENV=$TARGET/bench-queue-venv
CACHE=${KAI_BENCH_CACHE:-$HOME/.cache/kai-bench}
PROFILE=${KAI_BENCH_PROFILE:-release}
PYTHON=${PYTHON:-python3}
JOBS=${JOBS:-20000}
WORKERS=${WORKERS:-4}
PRODUCERS=${PRODUCERS:-1 8}
ROUNDS=${ROUNDS:-3}
PARTS=${PARTS:-throughput accuracy}
SCHEDULES=${SCHEDULES:-1000}
FIRES=${FIRES:-60}
REDIS_PORT=${REDIS_PORT:-56390}
POSTGRES=
if [[ ${1:-} == --postgres ]]; then
    POSTGRES=${2:?--postgres needs a URL}
fi
export PYTHONDONTWRITEBYTECODE=1

log() { echo "[queue] $*" >&2; }
die() { log "$*"; exit 1; }

cd "$ROOT"
cargo build --profile "$PROFILE" --locked -p kai-jobs --example queue_throughput \
    --example schedule_accuracy || die "cargo build failed"
THROUGHPUT=$TARGET/$PROFILE/examples/queue_throughput
ACCURACY=$TARGET/$PROFILE/examples/schedule_accuracy

if ! command -v redis-server >/dev/null; then
    log "installing redis-server from Debian"
    apt-get install -y redis-server >/dev/null || die "apt-get install redis-server failed"
fi
REQS=$HERE/requirements.txt
want=$(sha256sum "$REQS" | cut -d' ' -f1)
if [[ ! -x $VENV/bin/python || $(cat "$VENV/.requirements.sha256" 2>/dev/null) != "$want" ]]; then
    log "installing the pinned Python packages into $VENV"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet -r "$REQS" || die "pip install failed"
    echo "$want" >"$VENV/.requirements.sha256"
fi

WORK=$(mktemp -d)
export BENCH_CELERY_LOG=$WORK/celery-worker.log
stop_redis() {
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap stop_redis EXIT
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --dir "$WORK" --logfile "$WORK/redis.log" >/dev/null ||
    die "redis-server did not start"
for _ in $(seq 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
done

mkdir -p "$CACHE/results"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
LINES=$CACHE/results/queue-$STAMP.jsonl
COMMIT=$(git rev-parse --short HEAD)
DIRTY=$(git status --porcelain --untracked-files=no | grep -q . && echo " (with uncommitted changes)" || true)
log "kai $COMMIT$DIRTY, $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)); lines in $LINES"

run() {
    local line
    line=$("$@") || die "failed: $*"
    echo "$line" | tee -a "$LINES"
}

kai_run() {
    local backend=$1
    shift
    if [[ $backend == postgres ]]; then
        KAI_TEST_DATABASE_URL=$POSTGRES run "$@"
    else
        KAI_TEST_DATABASE_URL= run "$@"
    fi
}

if [[ " $PARTS " == *" throughput "* ]]; then
    targets=(sqlite)
    [[ -n $POSTGRES ]] && targets+=(postgres)
    targets+=(celery)
    for round in $(seq "$ROUNDS"); do
        # Rotate the order each round, so that no target always runs first.
        shift_by=$(((round - 1) % ${#targets[@]}))
        order=("${targets[@]:shift_by}" "${targets[@]:0:shift_by}")
        for producers in $PRODUCERS; do
            for target in "${order[@]}"; do
                log "throughput round $round, $target, $producers producer(s)"
                if [[ $target == celery ]]; then
                    run "$VENV/bin/python" "$HERE/celery_bench.py" "$REDIS_PORT" "$JOBS" \
                        "$WORKERS" "$producers"
                else
                    kai_run "$target" "$THROUGHPUT" "$JOBS" "$WORKERS" "$producers"
                fi
            done
        done
    done
fi

if [[ " $PARTS " == *" accuracy "* ]]; then
    backends=(sqlite)
    [[ -n $POSTGRES ]] && backends+=(postgres)
    for round in $(seq "$ROUNDS"); do
        for backend in "${backends[@]}"; do
            log "accuracy round $round, $backend"
            kai_run "$backend" "$ACCURACY" "$SCHEDULES" "$WORKERS" "$FIRES"
        done
    done
fi

SUMMARY=$CACHE/results/queue-$STAMP.md
"$PYTHON" - "$LINES" "$COMMIT$DIRTY" "$ROUNDS" >"$SUMMARY" <<'EOF'
import json
import statistics
import sys
from collections import defaultdict

lines = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
median = statistics.median
print(f"### Queue, kai {sys.argv[2]}: medians of {sys.argv[3]} rounds")
runs = defaultdict(list)
for line in lines:
    if "system" in line:
        runs[(line["system"], line["backend"], line["producers"])].append(line)
if runs:
    print()
    print("| system | store | producers | enqueued/s | completed/s | drain (s) | rounds |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    for (system, backend, producers), group in sorted(runs.items()):
        row = [median(l[k] for l in group) for k in ("enqueue_per_s", "complete_per_s", "drain_s")]
        per_round = "; ".join(f"{l['enqueue_per_s']}/{l['complete_per_s']}" for l in group)
        print(f"| {system} | {backend} | {producers} | {row[0]:,.0f} | {row[1]:,.0f} "
              f"| {row[2]:.2f} | {per_round} |")
parts = defaultdict(list)
for line in lines:
    if "part" in line:
        parts[(line["part"], line["backend"], line["jobs"])].append(line)
if parts:
    print()
    print("| scheduler | store | jobs | late p50 (ms) | late p99 (ms) | late max (ms) | rounds (p50/p99) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    for (part, backend, jobs), group in sorted(parts.items()):
        row = [median(l[k] for l in group) for k in ("p50_ms", "p99_ms", "max_ms")]
        per_round = "; ".join(f"{l['p50_ms']}/{l['p99_ms']}" for l in group)
        print(f"| {part} | {backend} | {jobs} | {row[0]:.1f} | {row[1]:.1f} | {row[2]:.1f} "
              f"| {per_round} |")
EOF
cat "$SUMMARY"
