#!/usr/bin/env bash
# Gateway overhead: the latency kai adds over calling a fast loopback upstream directly, at
# fixed request rates, streaming and not, side by side with LiteLLM's proxy in front of the
# same upstream, in one run.
#
#   bench/gateway/run.sh                         # 3 rounds × 15 s per point, 200 and 1,000 req/s
#   MODES=stream RATES=1000 bench/gateway/run.sh  # one point
#   RATES="10 200 1000" ROUNDS=5 DURATION=12 bench/gateway/run.sh   # as in docs/BENCHMARKS.md
#   TARGETS="direct kai" bench/gateway/run.sh    # without the peer
#   KAI_BENCH_BIN=/path/to/kai bench/gateway/run.sh           # skip the cargo build
#   KAI_BENCH_PROFILE=quick bench/gateway/run.sh  # build scripts/run's profile (default: release)
#   KAI_BENCH_KAI_ENV="KAI_LOG_LEVEL=warn" bench/gateway/run.sh  # extra settings for kai serve
#   KAI_BENCH_KAI_NODELAY=1 bench/gateway/run.sh   # diagnostic: TCP_NODELAY forced on kai's sockets
#   KAI_BENCH_PERF=/tmp/prof TARGETS="direct kai" bench/gateway/run.sh  # also profile kai (perf)
#
# kai refuses unknown KAI_* variables (KAI_BENCH_* excepted), so the runner's own knobs that
# kai could inherit are all named KAI_BENCH_*.
#
# Every server (the mock upstream, kai, LiteLLM) is pinned to SERVER_CPU (0), oha to LOAD_CPU
# (1): the mock shares its core with the gateway under test in every configuration, direct
# runs included. Any non-2xx answer or error fails a direct or kai run; LiteLLM's are recorded
# (it saturates). Results: stdout and $KAI_BENCH_CACHE/results/.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${KAI_BENCH_CACHE:-$HOME/.cache/kai-bench}
VENV=$CACHE/venv-gateway
PYTHON=${PYTHON:-python3}
DURATION=${DURATION:-15}        # seconds per measured run
WARMUP=${WARMUP:-3}             # seconds per warm-up run, before each point's rounds
ROUNDS=${ROUNDS:-3}
RATES=${RATES:-200 1000}        # offered requests per second
MODES=${MODES:-plain stream}    # plain: whole JSON answers; stream: server-sent events
TARGETS=${TARGETS:-direct kai litellm}
CONNECTIONS=${CONNECTIONS:-32}  # oha's connection pool; enough to hold the rates at these latencies
PAUSE=${PAUSE:-2}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
OHA_VERSION=1.16.0
EXPECTED_TEXT="The quick brown fox jumps over the lazy dog."

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '\n[bench] FAILED: %s\n' "$*" >&2; exit 1; }

DURATION=${DURATION%s} WARMUP=${WARMUP%s}
[[ $DURATION =~ ^[0-9]+$ && $WARMUP =~ ^[0-9]+$ ]] || die "DURATION and WARMUP are whole seconds (15 or 15s)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kai-bench-gateway.XXXXXX")
PIDS=()
cleanup() {
    local rc=$? pid child
    for pid in "${PIDS[@]}"; do
        # LiteLLM's CLI may leave worker processes of its own: end them with it.
        for child in $(pgrep -P "$pid" 2>/dev/null || true); do kill "$child" 2>/dev/null || true; done
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ $rc -ne 0 && -z ${KEEP_WORK:-} ]]; then
        for f in "$WORK"/*.log; do [[ -s $f ]] && { log "--- tail of $(basename "$f") ---"; tail -n 20 "$f" >&2; }; done
    fi
    if [[ -n ${KEEP_WORK:-} ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'log "FAILED: status $? at line $LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------- helpers

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

json_get() {  # json_get FIELD < json
    "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

wait_ready() {  # wait_ready URL PID NAME [CURL_ARGS...]
    local url=$1 pid=$2 name=$3
    shift 3
    for _ in $(seq 600); do
        kill -0 "$pid" 2>/dev/null || die "$name exited before it was ready (log: $WORK/$name.log)"
        if curl -fsS -o /dev/null --max-time 1 "$@" "$url" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    die "$name not ready at $url after 60 s"
}

alive() {  # alive NAME
    local pid_var=${1^^}_PID
    kill -0 "${!pid_var}" 2>/dev/null || die "$1 died (log: $WORK/$1.log)"
}

target_dir() {  # target_dir MANIFEST -> cargo's target directory for that project
    cargo metadata --format-version 1 --no-deps --manifest-path "$1" | json_get target_directory
}

# The request bodies: a short chat, whole or streamed (asking for usage, as OpenAI's SDKs can).
body() {  # body MODEL MODE
    local stream=
    [[ $2 == stream ]] && stream=', "stream": true, "stream_options": {"include_usage": true}'
    printf '{"model": "%s", "messages": [{"role": "user", "content": "Say something short."}], "max_tokens": 32%s}' "$1" "$stream"
}

# Check one target by hand: a whole answer and a stream, each 200 with the mock's text
# intact, and a wrong key refused with one of WRONG_KEY_CODES.
check_chat() {  # check_chat NAME URL KEY MODEL WRONG_KEY_CODES
    local name=$1 url=$2 key=$3 model=$4 wrong=$5 mode code out
    for mode in plain stream; do
        out=$WORK/$name-check-$mode.txt
        code=$(curl -sS -o "$out" -w '%{http_code}' --max-time 30 -H "Authorization: Bearer $key" \
            -H 'content-type: application/json' -d "$(body "$model" "$mode")" "$url") \
            || die "$name: the $mode check request failed"
        [[ $code == 200 ]] || die "$name: $mode chat completion answered $code: $(head -c 2000 "$out")"
        "$PYTHON" - "$name" "$mode" "$out" "$EXPECTED_TEXT" <<'EOF' || die "$name: the $mode answer is not the mock's (above)"
import json, sys
name, mode, path, want = sys.argv[1:]
text = open(path).read()
if mode == "plain":
    body = json.loads(text)
    got = body["choices"][0]["message"]["content"]
    assert body["choices"][0]["finish_reason"] == "stop", body
    assert body["usage"]["total_tokens"] > 0, body
    shown = got
else:
    data = [line[len("data:"):].strip() for line in text.splitlines() if line.startswith("data:")]
    assert data and data[-1] == "[DONE]", f"the stream does not end with [DONE]: {text[-300:]!r}"
    chunks = [json.loads(d) for d in data[:-1]]
    got = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
    assert any(c.get("usage") for c in chunks), "no usage chunk in the stream"
    shown = f"{len(chunks)} chunks + [DONE], text {got!r}"
assert got == want, f"text {got!r}, expected {want!r}: {text[:2000]}"
print(f"[bench] {name} {mode}: 200, {shown}", file=sys.stderr)
EOF
    done
    code=$(curl -sS -o "$WORK/$name-check-badkey.txt" -w '%{http_code}' --max-time 30 \
        -H "Authorization: Bearer sk-not-a-real-key" -H 'content-type: application/json' \
        -d "$(body "$model" plain)" "$url")
    [[ " $wrong " == *" $code "* ]] || die "$name: a wrong key answered $code, not one of $wrong"
    log "$name: a wrong key is refused with $code"
}

# ---------------------------------------------------------------------------- tools

OHA=${KAI_BENCH_OHA:-$CACHE/tools/bin/oha}
ensure_oha() {
    if [[ -x $OHA ]] && "$OHA" --version 2>/dev/null | grep -q "$OHA_VERSION"; then return 0; fi
    [[ -z ${KAI_BENCH_OHA:-} ]] || die "KAI_BENCH_OHA=$OHA is not oha $OHA_VERSION"
    log "installing oha $OHA_VERSION into $CACHE/tools (cargo install --locked)"
    mkdir -p "$CACHE/tools"
    cargo install oha --version "$OHA_VERSION" --locked --root "$CACHE/tools" \
        >"$WORK/oha-install.log" 2>&1 || { tail -n 30 "$WORK/oha-install.log" >&2; die "cargo install oha failed"; }
    [[ -x $OHA ]] || die "no oha at $OHA after the install"
}

ensure_venv() {
    local want stamp=$VENV/.requirements.sha256
    want=$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)
    if [[ -x $VENV/bin/litellm && $(cat "$stamp" 2>/dev/null) == "$want" ]]; then return 0; fi
    log "creating $VENV from bench/gateway/requirements.txt (LiteLLM's proxy; a few minutes)"
    rm -rf "$VENV"
    mkdir -p "$CACHE"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt" \
        || die "pip install of bench/gateway/requirements.txt failed"
    "$VENV/bin/pip" check >/dev/null || log "WARNING: pip check reports conflicts in $VENV (LiteLLM's own pins)"
    echo "$want" >"$stamp"
}

# ---------------------------------------------------------------------------- the mock upstream

UPSTREAM_BIN=${KAI_BENCH_UPSTREAM_BIN:-}
upstream_build() {
    if [[ -n $UPSTREAM_BIN ]]; then
        [[ -x $UPSTREAM_BIN ]] || die "KAI_BENCH_UPSTREAM_BIN=$UPSTREAM_BIN is not an executable"
        return 0
    fi
    log "building the mock upstream (bench/gateway/upstream, cargo build --release --locked)"
    cargo build --release --locked --quiet --manifest-path "$HERE/upstream/Cargo.toml" \
        || die "cargo build of bench/gateway/upstream failed"
    UPSTREAM_BIN=$(target_dir "$HERE/upstream/Cargo.toml")/release/kai-bench-upstream
    [[ -x $UPSTREAM_BIN ]] || die "no binary at $UPSTREAM_BIN after the build"
}

upstream_start() {  # upstream_start PORT KEY; sets UPSTREAM_PID
    "${PIN_SERVER[@]}" "$UPSTREAM_BIN" "127.0.0.1:$1" "$2" >"$WORK/upstream.log" 2>&1 &
    UPSTREAM_PID=$!
    PIDS+=("$UPSTREAM_PID")
    wait_ready "http://127.0.0.1:$1/v1/models" "$UPSTREAM_PID" upstream -H "Authorization: Bearer $2"
}

# ---------------------------------------------------------------------------- kai
# Everything kai-specific is here: adjust these functions if kai's CLI or API moves.

KAI_BIN=${KAI_BENCH_BIN:-}
# kai runs with its shipped defaults (log level info: one log line per request, into a file
# here) unless told otherwise, e.g. KAI_BENCH_KAI_ENV="KAI_LOG_LEVEL=warn".
read -r -a KAI_ENV <<<"${KAI_BENCH_KAI_ENV:-}"
KAI_SETTINGS=${KAI_BENCH_KAI_ENV:-shipped defaults (log level info: a line per request, to a file)}

# Diagnostic: kai's server leaves Nagle's algorithm on for the connections it accepts. This
# preloads a shim (diag/nodelay.c) that sets TCP_NODELAY on them, to measure what that costs.
kai_nodelay_shim() {
    command -v cc >/dev/null || die "KAI_BENCH_KAI_NODELAY=1 needs a C compiler (cc)"
    cc -O2 -shared -fPIC -o "$WORK/nodelay.so" "$HERE/diag/nodelay.c" -ldl || die "cannot build diag/nodelay.c"
    KAI_ENV+=(LD_PRELOAD="$WORK/nodelay.so")
    KAI_SETTINGS="$KAI_SETTINGS; diagnostic: TCP_NODELAY forced on accepted sockets (LD_PRELOAD diag/nodelay.c)"
}

# The packaged build (whole-program optimisation) unless told otherwise; `quick` is what
# scripts/run builds.
PROFILE=${KAI_BENCH_PROFILE:-release}
kai_build() {
    if [[ -n $KAI_BIN ]]; then
        [[ -x $KAI_BIN ]] || die "KAI_BENCH_BIN=$KAI_BIN is not an executable"
        return 0
    fi
    log "building kai (cargo build --profile $PROFILE -p kai-cli --locked)"
    (cd "$ROOT" && cargo build --profile "$PROFILE" -p kai-cli --locked) || die "cargo build failed"
    KAI_BIN=$(target_dir "$ROOT/Cargo.toml")/$PROFILE/kai
    [[ -x $KAI_BIN ]] || die "no binary at $KAI_BIN after the build"
}

kai_start() {  # kai_start PORT UPSTREAM_PORT UPSTREAM_KEY; sets KAI_PID, KAI_PASSWORD
    local port=$1 dir=$WORK/kai-data password
    mkdir -p "$dir"
    # A configuration file of our own (the mock as the only provider), so a
    # ~/.config/kai/kai.toml cannot change the run.
    cat >"$WORK/kai.toml" <<EOF
[[providers]]
name = "mock"
kind = "openai-compatible"
base_url = "http://127.0.0.1:$2/v1"
api_key = "env:KAI_BENCH_UPSTREAM_KEY"

[[models]]
name = "bench"
deployments = [{ provider = "mock", model = "mock" }]
EOF
    KAI_ENV=(KAI_CONFIG="$WORK/kai.toml" KAI_DATA_DIR="$dir" KAI_BENCH_UPSTREAM_KEY="$3" "${KAI_ENV[@]}")
    password=$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(18))')
    printf '%s\n' "$password" | env "${KAI_ENV[@]}" "$KAI_BIN" user create --admin bench \
        >"$WORK/kai-user.log" 2>&1 || die "kai user create failed (log: $WORK/kai-user.log)"
    env "${KAI_ENV[@]}" KAI_BIND="127.0.0.1:$port" "${PIN_SERVER[@]}" "$KAI_BIN" serve \
        >"$WORK/kai.log" 2>&1 &
    KAI_PID=$!
    PIDS+=("$KAI_PID")
    wait_ready "http://127.0.0.1:$port/readyz" "$KAI_PID" kai
    KAI_PASSWORD=$password
}

kai_create_key() {  # kai_create_key PORT; sets KAI_KEY (scopes read and write: chat needs write)
    local base=http://127.0.0.1:$1 token login
    login=$("$PYTHON" -c 'import json, sys; print(json.dumps({"username": "bench", "password": sys.argv[1]}))' "$KAI_PASSWORD")
    token=$(curl -sS --fail-with-body -H 'content-type: application/json' -d "$login" "$base/api/v1/auth/login" \
        | json_get access_token) || die "kai login failed"
    KAI_KEY=$(curl -sS --fail-with-body -H "Authorization: Bearer $token" -H 'content-type: application/json' \
        -d '{"name":"bench","scopes":["read","write"]}' "$base/api/v1/keys" | json_get key) \
        || die "kai key creation failed"
}

# ---------------------------------------------------------------------------- LiteLLM

litellm_start() {  # litellm_start PORT UPSTREAM_PORT UPSTREAM_KEY; sets LITELLM_PID, LITELLM_KEY
    local port=$1
    LITELLM_KEY=sk-bench-$("$PYTHON" -c 'import secrets; print(secrets.token_hex(16))')
    # The same mock as an OpenAI-compatible model; a master key and no database, as the
    # proxy's quick start has it.
    cat >"$WORK/litellm.yaml" <<EOF
model_list:
  - model_name: bench
    litellm_params:
      model: openai/mock
      api_base: http://127.0.0.1:$2/v1
      api_key: os.environ/KAI_BENCH_UPSTREAM_KEY
general_settings:
  master_key: $LITELLM_KEY
EOF
    # No network here: use the cost map bundled in the package instead of fetching it.
    env -u DATABASE_URL LITELLM_LOCAL_MODEL_COST_MAP=True KAI_BENCH_UPSTREAM_KEY="$3" \
        "${PIN_SERVER[@]}" "$VENV/bin/litellm" --config "$WORK/litellm.yaml" \
        --host 127.0.0.1 --port "$port" --num_workers 1 >"$WORK/litellm.log" 2>&1 &
    LITELLM_PID=$!
    PIDS+=("$LITELLM_PID")
    wait_ready "http://127.0.0.1:$port/health/liveliness" "$LITELLM_PID" litellm
}

# ---------------------------------------------------------------------------- main

for tool in curl cargo taskset "$PYTHON"; do command -v "$tool" >/dev/null || die "$tool is needed"; done
[[ " $TARGETS " == *" direct "* ]] || die "TARGETS must include direct: overheads are measured against it"
for t in $TARGETS; do [[ $t =~ ^(direct|kai|litellm)$ ]] || die "unknown target '$t' in TARGETS (direct, kai, litellm)"; done
for m in $MODES; do [[ $m =~ ^(plain|stream)$ ]] || die "unknown mode '$m' in MODES (plain, stream)"; done
for r in $RATES; do [[ $r =~ ^[1-9][0-9]*$ ]] || die "RATES are whole requests per second, not '$r'"; done

# Prefixes for the server and oha commands. Plain arrays, not a function: a function run with &
# is a subshell whose $! is not the server's pid, and the trap would miss the server.
PINNING=1 PIN_SERVER=(taskset -c "$SERVER_CPU") PIN_LOAD=(taskset -c "$LOAD_CPU")
if [[ $(nproc) -lt 2 ]]; then
    log "WARNING: fewer than 2 CPUs: running unpinned, figures are not comparable"
    PINNING='' PIN_SERVER=() PIN_LOAD=()
fi

ensure_oha
upstream_build
if [[ " $TARGETS " == *" kai "* ]]; then
    kai_build
    if [[ -n ${KAI_BENCH_KAI_NODELAY:-} ]]; then kai_nodelay_shim; fi
fi
PERF_DIR=${KAI_BENCH_PERF:-}
if [[ -n $PERF_DIR ]]; then
    command -v perf >/dev/null || die "KAI_BENCH_PERF needs perf (apt-get install linux-perf)"
    [[ " $TARGETS " == *" kai "* ]] || die "KAI_BENCH_PERF profiles kai: TARGETS must include kai"
    mkdir -p "$PERF_DIR"
fi
if [[ " $TARGETS " == *" litellm "* ]]; then ensure_venv; fi

UPSTREAM_KEY=sk-upstream-$("$PYTHON" -c 'import secrets; print(secrets.token_hex(16))')
declare -A URL KEY MODEL
port=$(free_port)
upstream_start "$port" "$UPSTREAM_KEY"
UPSTREAM_PORT=$port
URL[direct]=http://127.0.0.1:$port/v1/chat/completions KEY[direct]=$UPSTREAM_KEY MODEL[direct]=mock
check_chat direct "${URL[direct]}" "$UPSTREAM_KEY" mock 401
for t in $TARGETS; do
    case $t in
        kai)
            port=$(free_port)
            kai_start "$port" "$UPSTREAM_PORT" "$UPSTREAM_KEY"
            kai_create_key "$port"
            URL[kai]=http://127.0.0.1:$port/v1/chat/completions KEY[kai]=$KAI_KEY MODEL[kai]=bench
            check_chat kai "${URL[kai]}" "$KAI_KEY" bench 401
            ;;
        litellm)
            port=$(free_port)
            litellm_start "$port" "$UPSTREAM_PORT" "$UPSTREAM_KEY"
            URL[litellm]=http://127.0.0.1:$port/v1/chat/completions KEY[litellm]=$LITELLM_KEY MODEL[litellm]=bench
            # With no database, LiteLLM answers a wrong key with 400 rather than 401.
            check_chat litellm "${URL[litellm]}" "$LITELLM_KEY" bench "400 401"
            ;;
    esac
done

OHA_ARGS=(--no-tui --output-format json --latency-correction --wait-ongoing-requests-after-deadline
    -c "$CONNECTIONS" -m POST -T application/json)
cpu_ns() {  # cpu_ns PID -> time on CPU of the process's threads, in nanoseconds (schedstat)
    cat "/proc/$1/task/"*/schedstat 2>/dev/null | awk '{ns += $1} END {printf "%.0f\n", ns}'
}

run_oha() {  # run_oha TARGET MODE RATE ROUND SECONDS -> JSON line on stdout (none for warm-ups)
    local t=$1 mode=$2 rate=$3 rnd=$4 secs=$5 out=$WORK/oha-$1-$2-$3-$4.json pid_var before after
    # The CPU time of the server under test (the mock's own, for direct runs) over the run.
    pid_var=${t^^}_PID
    if [[ $t == direct ]]; then pid_var=UPSTREAM_PID; fi
    before=$(cpu_ns "${!pid_var}")
    "${PIN_LOAD[@]}" "$OHA" "${OHA_ARGS[@]}" -z "${secs}s" -q "$rate" \
        -H "Authorization: Bearer ${KEY[$t]}" -d "$(body "${MODEL[$t]}" "$mode")" "${URL[$t]}" \
        >"$out" 2>"$WORK/oha.log" || { cat "$WORK/oha.log" >&2; die "oha failed against $t"; }
    alive upstream
    if [[ $t != direct ]]; then alive "$t"; fi
    after=$(cpu_ns "${!pid_var}")
    if [[ $rnd == 0 ]]; then return 0; fi
    "$PYTHON" "$HERE/ohastats.py" parse "$t" "$mode" "$rate" "$rnd" "$secs" \
        "$(awk -v ns=$((after - before)) 'BEGIN { print ns / 1e9 }')" "$out" \
        || die "$t, $mode at $rate/s, round $rnd had errors (above)"
}

# An extra run against kai, not counted, with perf sampling kai's threads (perf on the load
# generator's CPU); the samples split by diag/perfsplit.py.
profile_kai() {  # profile_kai MODE RATE
    local name=kai-$1-$2 perf_pid
    log "$1, $2/s: profiling kai with perf (${DURATION} s, not counted) into $PERF_DIR/$name.*"
    "${PIN_LOAD[@]}" perf record -q -F 999 -g --call-graph dwarf,16384 -p "$KAI_PID" \
        -o "$PERF_DIR/$name.data" -- sleep "$DURATION" >"$WORK/perf.log" 2>&1 &
    perf_pid=$!
    PIDS+=("$perf_pid")
    run_oha kai "$1" "$2" 0 "$DURATION"
    wait "$perf_pid" || { cat "$WORK/perf.log" >&2; die "perf record failed"; }
    perf script -i "$PERF_DIR/$name.data" -F comm,tid,period,ip,sym --no-inline >"$PERF_DIR/$name.txt" 2>/dev/null \
        || die "perf script failed"
    "$PYTHON" "$HERE/diag/perfsplit.py" "$PERF_DIR/$name.txt" | tee "$PERF_DIR/$name.split" >&2
    sleep "$PAUSE"
}

read -r -a order <<<"$TARGETS"
n=${#order[@]}
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
ROUNDS_FILE=$WORK/rounds.jsonl
: >"$ROUNDS_FILE"
for mode in $MODES; do
    for rate in $RATES; do
        for t in "${order[@]}"; do
            log "$mode, $rate/s: warming up $t (${WARMUP} s)"
            run_oha "$t" "$mode" "$rate" 0 "$WARMUP"
            sleep "$PAUSE"
        done
        for ((r = 1; r <= ROUNDS; r++)); do
            # Rotate the order, so that no target always runs first or right after another.
            for ((i = 0; i < n; i++)); do
                t=${order[(i + r - 1) % n]}
                log "$mode, $rate/s, round $r/$ROUNDS: $t (${DURATION} s)"
                run_oha "$t" "$mode" "$rate" "$r" "$DURATION" >>"$ROUNDS_FILE"
                sleep "$PAUSE"
            done
        done
        if [[ -n $PERF_DIR ]]; then profile_kai "$mode" "$rate"; fi
    done
done
if [[ -f $WORK/kai.log ]]; then
    log "kai's log: $(du -h "$WORK/kai.log" | cut -f1) ($(wc -l <"$WORK/kai.log") lines)"
fi

# ---------------------------------------------------------------------------- report

export KAI_BENCH_META_DATE KAI_BENCH_META_LOAD KAI_BENCH_META_NPROC KAI_BENCH_META_CPU KAI_BENCH_META_KERNEL \
    KAI_BENCH_META_OHA_CMD KAI_BENCH_META_OHA_VERSION KAI_BENCH_META_PINNING KAI_BENCH_META_ROUNDS \
    KAI_BENCH_META_DURATION KAI_BENCH_META_KAI KAI_BENCH_META_KAI_SETTINGS KAI_BENCH_META_LITELLM
KAI_BENCH_META_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
KAI_BENCH_META_LOAD="load average at the start $LOAD_START, at the end $(cut -d' ' -f1-3 /proc/loadavg)"
KAI_BENCH_META_NPROC=$(nproc)
KAI_BENCH_META_CPU=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || echo unknown)
KAI_BENCH_META_KERNEL=$(uname -r)
KAI_BENCH_META_OHA_CMD="oha -q RATE -z ${DURATION}s -c $CONNECTIONS --latency-correction --wait-ongoing-requests-after-deadline"
KAI_BENCH_META_OHA_VERSION=$("$OHA" --version 2>/dev/null | head -n1)
KAI_BENCH_META_PINNING=${PINNING:+mock upstream and the server under test on CPU $SERVER_CPU, oha on CPU $LOAD_CPU (taskset)}
KAI_BENCH_META_PINNING=${KAI_BENCH_META_PINNING:-unpinned}
KAI_BENCH_META_ROUNDS=$ROUNDS
KAI_BENCH_META_DURATION="${DURATION} s"
rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo no-commit)
[[ -z $(git -C "$ROOT" status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null) ]] || rev="$rev+dirty"
KAI_BENCH_META_KAI="kai ($rev, ${KAI_BENCH_BIN:-profile $PROFILE})"
KAI_BENCH_META_KAI_SETTINGS=$KAI_SETTINGS
if [[ -x $VENV/bin/python ]]; then
    KAI_BENCH_META_LITELLM=$("$VENV/bin/python" -c 'from importlib.metadata import version as v; import platform
print("LiteLLM %s proxy (CPython %s)" % (v("litellm"), platform.python_version()))')
fi

mkdir -p "$CACHE/results"
RESULT=$CACHE/results/gateway-$(date -u +%Y%m%dT%H%M%SZ).md
echo
"$PYTHON" "$HERE/ohastats.py" report "$ROUNDS_FILE" | tee "$RESULT"
cp "$ROUNDS_FILE" "${RESULT%.md}.jsonl"
echo
log "written to $RESULT (and the per-round figures to ${RESULT%.md}.jsonl)"
