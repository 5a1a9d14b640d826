#!/usr/bin/env bash
# Two kai binaries side by side under the same load at the same moment: server CPU time per
# request for each, round by round. For comparing build profiles (or any two builds) on a
# shared machine, where runs minutes apart differ by more than the builds do.
#
#   bench/profiles/run.sh BIN_A BIN_B                 # whole answers, 5 rounds of 10 s, 500/s each
#   MODE=stream bench/profiles/run.sh BIN_A BIN_B      # streams
#   MODE=me RATE=2000 bench/profiles/run.sh BIN_A BIN_B   # GET /api/v1/me with an API key
#
# Both servers and the mock upstream (bench/gateway/upstream) run on CPU 0, both load
# generators (oha, 16 connections each, a fixed rate) on CPU 1, at once, so that whatever else
# the machine does falls on both. CPU per request is the server's utime + stime over a round
# divided by the requests offered. It needs oha and the mock upstream, which
# bench/gateway/run.sh installs and builds: run that once first.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${KAI_BENCH_CACHE:-$HOME/.cache/kai-bench}
OHA=${KAI_BENCH_OHA:-$CACHE/tools/bin/oha}
MODE=${MODE:-plain}
ROUNDS=${ROUNDS:-5}
SECONDS_PER_ROUND=${SECONDS_PER_ROUND:-10}
RATE=${RATE:-500}

die() { echo "bench/profiles: $*" >&2; exit 1; }
(($# == 2)) || die "usage: bench/profiles/run.sh BIN_A BIN_B"
A=$(realpath "$1") B=$(realpath "$2")
[[ -x $A && -x $B ]] || die "both arguments must be kai binaries"
[[ -x $OHA ]] || die "no oha at $OHA: run bench/gateway/run.sh once first"
UPSTREAM=${KAI_BENCH_UPSTREAM_BIN:-$(cd "$ROOT/bench/gateway/upstream" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/kai-bench-upstream}
[[ -x $UPSTREAM ]] || die "no mock upstream at $UPSTREAM: run bench/gateway/run.sh once first"
case $MODE in plain | stream | me) ;; *) die "MODE must be plain, stream or me" ;; esac

WORK=$(mktemp -d /tmp/kai-bench-profiles.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

taskset -c 0 "$UPSTREAM" 127.0.0.1:19101 upkey >"$WORK/upstream.log" 2>&1 &
PIDS+=($!)
cat >"$WORK/kai.toml" <<'TOML'
[[providers]]
name = "mock"
kind = "openai-compatible"
base_url = "http://127.0.0.1:19101/v1"
api_key = "env:KAI_BENCH_UPSTREAM_KEY"

[[models]]
name = "bench"
deployments = [{ provider = "mock", model = "mock" }]
TOML

start() { # start BIN PORT DIR: a server with an admin, on CPU 0; sets SERVER_PID
    mkdir -p "$3"
    local env=(env KAI_CONFIG="$WORK/kai.toml" KAI_DATA_DIR="$3" KAI_BENCH_UPSTREAM_KEY=upkey
        KAI_LOCAL_ENABLED=false HOME="$3")
    printf 'bench-password-123\n' | "${env[@]}" "$1" user create --admin bench >/dev/null 2>&1 ||
        die "cannot create the admin for $1"
    "${env[@]}" KAI_BIND="127.0.0.1:$2" taskset -c 0 "$1" serve >"$3/kai.log" 2>&1 &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
}
api_key() { # api_key PORT -> a key with the write scope
    local ready=0
    for _ in $(seq 300); do
        curl -sf -o /dev/null "http://127.0.0.1:$1/readyz" && ready=1 && break
        sleep 0.2
    done
    ((ready)) || die "the server on port $1 did not start"
    local token
    token=$(curl -sf "http://127.0.0.1:$1/api/v1/auth/login" -H 'content-type: application/json' \
        -d '{"username":"bench","password":"bench-password-123"}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    curl -sf "http://127.0.0.1:$1/api/v1/keys" -H "authorization: Bearer $token" \
        -H 'content-type: application/json' -d '{"name":"bench","scopes":["write"]}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

start "$A" 19102 "$WORK/a"
PID_A=$SERVER_PID
start "$B" 19103 "$WORK/b"
PID_B=$SERVER_PID
KEY_A=$(api_key 19102)
KEY_B=$(api_key 19103)

BODY='{"model": "bench", "messages": [{"role": "user", "content": "Say something short."}], "max_tokens": 32'
[[ $MODE == stream ]] && BODY+=', "stream": true, "stream_options": {"include_usage": true}'
BODY+='}'
load() { # load PORT KEY SECONDS
    if [[ $MODE == me ]]; then
        taskset -c 1 "$OHA" -q "$RATE" -z "${3}s" -c 16 --no-tui -H "authorization: Bearer $2" \
            "http://127.0.0.1:$1/api/v1/me" >/dev/null
    else
        taskset -c 1 "$OHA" -q "$RATE" -z "${3}s" -c 16 --no-tui -m POST \
            -H "authorization: Bearer $2" -H 'content-type: application/json' -d "$BODY" \
            "http://127.0.0.1:$1/v1/chat/completions" >/dev/null
    fi
}

echo "mode $MODE, $RATE/s each, $ROUNDS rounds of $SECONDS_PER_ROUND s; A = $A, B = $B"
both() { # both SECONDS: the two loads at once
    load 19102 "$KEY_A" "$1" &
    local first=$!
    load 19103 "$KEY_B" "$1"
    wait "$first"
}
both 3  # warm-up
TICK=$(getconf CLK_TCK)
REQUESTS=$((RATE * SECONDS_PER_ROUND))
for round in $(seq "$ROUNDS"); do
    a0=$(cpu_ticks "$PID_A") b0=$(cpu_ticks "$PID_B")
    both "$SECONDS_PER_ROUND"
    a1=$(cpu_ticks "$PID_A") b1=$(cpu_ticks "$PID_B")
    a=$(((a1 - a0) * 1000000 / TICK / REQUESTS)) b=$(((b1 - b0) * 1000000 / TICK / REQUESTS))
    echo "round $round: A $a µs/req, B $b µs/req, B/A $(python3 -c "print(f'{$b / $a:.3f}')")"
done
