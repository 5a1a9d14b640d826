#!/usr/bin/env bash
# GET /api/v1/me authenticated with an API key, 64 concurrent connections: kai and an
# equivalent FastAPI + uvicorn + SQLAlchemy endpoint, side by side in one run.
#
#   bench/me/run.sh                      # both, 3 rounds of 20 s each
#   ROUNDS=5 DURATION=30s bench/me/run.sh
#   SERVERS=fastapi bench/me/run.sh      # the peer alone (e.g. before kai builds)
#   KAI_BENCH_BIN=/path/to/kai bench/me/run.sh       # skip the cargo build, use this binary
#   KAI_BENCH_PROFILE=quick bench/me/run.sh        # build scripts/run's profile (default: release)
#   KAI_BENCH_KAI_ENV="KAI_LOG_LEVEL=warn" bench/me/run.sh  # extra settings for kai serve
#
# kai refuses unknown KAI_* variables (KAI_BENCH_* excepted), so the runner's own knobs
# that kai could inherit are all named KAI_BENCH_*.
#
# Servers are pinned to SERVER_CPU (0), wrk to WRK_CPU (1). Any non-2xx response or
# socket error fails the run. Results: stdout and $KAI_BENCH_CACHE/results/.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${KAI_BENCH_CACHE:-$HOME/.cache/kai-bench}
VENV=$CACHE/venv
PYTHON=${PYTHON:-python3}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-5s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
PAUSE=${PAUSE:-2}
SERVER_CPU=${SERVER_CPU:-0}
WRK_CPU=${WRK_CPU:-1}
SERVERS=${SERVERS:-kai fastapi}

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '\n[bench] FAILED: %s\n' "$*" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kai-bench-me.XXXXXX")
PIDS=()
cleanup() {
    local rc=$? pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
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

wait_ready() {  # wait_ready URL PID NAME
    local url=$1 pid=$2 name=$3
    for _ in $(seq 300); do
        kill -0 "$pid" 2>/dev/null || die "$name exited before it was ready (log: $WORK/$name.log)"
        if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    die "$name not ready at $url after 30 s"
}

alive() {  # alive NAME
    local pid_var=${1^^}_PID
    kill -0 "${!pid_var}" 2>/dev/null || die "$1 server died (log: $WORK/$1.log)"
}

# Check one request by hand: 200, kai's JSON shape, API-key auth; and 401 without a key.
check_me() {  # check_me NAME URL KEY
    local name=$1 url=$2 key=$3 code
    code=$(curl -sS -o "$WORK/$name-me.json" -w '%{http_code}' -H "Authorization: Bearer $key" "$url")
    [[ $code == 200 ]] || die "$name: GET /api/v1/me with the key answered $code: $(cat "$WORK/$name-me.json")"
    "$PYTHON" - "$name" "$WORK/$name-me.json" <<'EOF' || die "$name: /api/v1/me body is not the expected shape"
import json, sys
name, path = sys.argv[1], sys.argv[2]
body = json.load(open(path))
want = {"id", "username", "role", "disabled", "created_at", "updated_at", "last_login_at", "auth"}
missing = want - body.keys()
assert not missing, f"missing fields {missing}"
assert body["username"] == "bench", body
assert body["auth"].get("method") == "api_key", body["auth"]
assert "read" in body["auth"].get("scopes", []), body["auth"]
print(f"[bench] {name} /api/v1/me -> {json.dumps(body)}", file=sys.stderr)
EOF
    code=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer kai_not_a_real_key" "$url")
    [[ $code == 401 ]] || die "$name: a wrong key answered $code, not 401"
}

# ---------------------------------------------------------------------------- tools

ensure_wrk() {
    command -v wrk >/dev/null && return 0
    log "installing wrk (apt-get)"
    local sudo=
    [[ $(id -u) -eq 0 ]] || sudo=sudo
    $sudo apt-get install -y -qq wrk >/dev/null 2>&1 \
        || { $sudo apt-get update -qq && $sudo apt-get install -y -qq wrk >/dev/null; } \
        || die "could not install wrk"
}

ensure_venv() {
    local want stamp=$VENV/.requirements.sha256
    want=$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)
    if [[ -x $VENV/bin/python && $(cat "$stamp" 2>/dev/null) == "$want" ]]; then return 0; fi
    log "creating $VENV from bench/me/requirements.txt"
    rm -rf "$VENV"
    mkdir -p "$CACHE"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
    "$VENV/bin/pip" check >/dev/null
    echo "$want" >"$stamp"
}

# ---------------------------------------------------------------------------- kai
# Everything kai-specific is here: adjust these three functions if kai's CLI or API moves.

KAI_BIN=${KAI_BENCH_BIN:-}
# kai runs with its shipped defaults (log level info: one log line per request, into a file
# here) unless told otherwise, e.g. KAI_BENCH_KAI_ENV="KAI_LOG_LEVEL=warn".
read -r -a KAI_ENV <<<"${KAI_BENCH_KAI_ENV:-}"

kai_build() {
    if [[ -n $KAI_BIN ]]; then
        [[ -x $KAI_BIN ]] || die "KAI_BENCH_BIN=$KAI_BIN is not an executable"
        return 0
    fi
    [[ -d $ROOT/crates/kai-cli ]] \
        || die "crates/kai-cli does not exist yet; run SERVERS=fastapi $0 for the peer alone"
    local profile=${KAI_BENCH_PROFILE:-release} target
    log "building kai (cargo build --profile $profile -p kai-cli)"
    (cd "$ROOT" && cargo build --profile "$profile" -p kai-cli) || die "cargo build failed"
    target=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | json_get target_directory)
    KAI_BIN=$target/$profile/kai
    [[ -x $KAI_BIN ]] || die "no binary at $KAI_BIN after the build"
}

kai_start() {  # kai_start PORT; sets KAI_PID
    local port=$1 dir=$WORK/kai-data password
    mkdir -p "$dir"
    # An empty config file of our own, so a ~/.config/kai/kai.toml cannot change the run.
    : >"$WORK/kai.toml"
    KAI_ENV=(KAI_CONFIG="$WORK/kai.toml" "${KAI_ENV[@]}")
    password=$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(18))')
    printf '%s\n' "$password" | env "${KAI_ENV[@]}" KAI_DATA_DIR="$dir" "$KAI_BIN" user create --admin bench \
        >"$WORK/kai-user.log" 2>&1 || die "kai user create failed (log: $WORK/kai-user.log)"
    env "${KAI_ENV[@]}" KAI_DATA_DIR="$dir" KAI_BIND="127.0.0.1:$port" "${PIN_SERVER[@]}" "$KAI_BIN" serve \
        >"$WORK/kai.log" 2>&1 &
    KAI_PID=$!
    PIDS+=("$KAI_PID")
    wait_ready "http://127.0.0.1:$port/readyz" "$KAI_PID" kai
    KAI_PASSWORD=$password
}

kai_create_key() {  # kai_create_key PORT; sets KAI_KEY
    local base=http://127.0.0.1:$1 token
    token=$(curl -sS --fail-with-body -H 'content-type: application/json' \
        -d "{\"username\":\"bench\",\"password\":\"$KAI_PASSWORD\"}" "$base/api/v1/auth/login" \
        | json_get access_token) || die "kai login failed"
    KAI_KEY=$(curl -sS --fail-with-body -H "Authorization: Bearer $token" -H 'content-type: application/json' \
        -d '{"name":"bench","scopes":["read"]}' "$base/api/v1/keys" | json_get key) \
        || die "kai key creation failed"
}

# ---------------------------------------------------------------------------- FastAPI

fastapi_start() {  # fastapi_start PORT; sets FASTAPI_PID and FASTAPI_KEY
    local port=$1
    export KAI_BENCH_FASTAPI_DB=$WORK/fastapi.db KAI_BENCH_POOL_SIZE=$CONNECTIONS
    FASTAPI_KEY=$("$VENV/bin/python" "$HERE/fastapi_app.py" setup) || die "FastAPI setup failed"
    # uvicorn's production advice for one core: one worker, no access log, uvloop + httptools.
    "${PIN_SERVER[@]}" "$VENV/bin/uvicorn" fastapi_app:app --app-dir "$HERE" \
        --host 127.0.0.1 --port "$port" --workers 1 --no-access-log --log-level warning \
        --loop uvloop --http httptools >"$WORK/fastapi.log" 2>&1 &
    FASTAPI_PID=$!
    PIDS+=("$FASTAPI_PID")
    wait_ready "http://127.0.0.1:$port/readyz" "$FASTAPI_PID" fastapi
}

# ---------------------------------------------------------------------------- main

command -v curl >/dev/null || die "curl is needed"
command -v "$PYTHON" >/dev/null || die "$PYTHON is needed"
ensure_wrk

# Prefixes for the server and wrk commands. Plain arrays, not a function: a function run
# with & is a subshell whose $! is not the server's pid, and the trap would miss the server.
PINNING=1 PIN_SERVER=(taskset -c "$SERVER_CPU") PIN_WRK=(taskset -c "$WRK_CPU")
if [[ $(nproc) -lt 2 ]] || ! command -v taskset >/dev/null; then
    log "WARNING: fewer than 2 CPUs or no taskset: running unpinned, figures are not comparable"
    PINNING='' PIN_SERVER=() PIN_WRK=()
fi

declare -A URL KEY
for s in $SERVERS; do
    case $s in
        kai)
            kai_build
            port=$(free_port)
            kai_start "$port"
            kai_create_key "$port"
            URL[kai]=http://127.0.0.1:$port/api/v1/me
            KEY[kai]=$KAI_KEY
            ;;
        fastapi)
            ensure_venv
            port=$(free_port)
            fastapi_start "$port"
            URL[fastapi]=http://127.0.0.1:$port/api/v1/me
            KEY[fastapi]=$FASTAPI_KEY
            ;;
        *) die "unknown server '$s' in SERVERS (kai, fastapi)" ;;
    esac
    check_me "$s" "${URL[$s]}" "${KEY[$s]}"
done
if [[ -n ${URL[kai]:-} && -n ${URL[fastapi]:-} ]]; then
    # The peer must do the same work: say so loudly if kai's /me has grown or lost fields.
    "$PYTHON" - "$WORK/kai-me.json" "$WORK/fastapi-me.json" <<'EOF' || log "WARNING: the two /me bodies differ in shape: update fastapi_app.py"
import json, sys
kai, peer = (json.load(open(p)) for p in sys.argv[1:])
shape = lambda b: (sorted(b), sorted(b["auth"]))
if shape(kai) != shape(peer):
    print(f"[bench] kai fields {shape(kai)}\n[bench] FastAPI fields {shape(peer)}", file=sys.stderr)
    sys.exit(1)
EOF
fi

run_wrk() {  # run_wrk NAME ROUND DURATION -> JSON line on stdout
    local name=$1 rnd=$2 out=$WORK/wrk-$1-$2.txt
    "${PIN_WRK[@]}" wrk -t1 "-c$CONNECTIONS" "-d$3" --latency \
        -H "Authorization: Bearer ${KEY[$name]}" "${URL[$name]}" >"$out" 2>&1 \
        || { cat "$out" >&2; die "wrk failed against $name"; }
    alive "$name"
    "$PYTHON" "$HERE/wrkstats.py" parse "$name" "$rnd" "$out" || die "$name round $rnd had errors (above)"
}

read -r -a order <<<"$SERVERS"
for s in "${order[@]}"; do
    log "warming up $s ($WARMUP)"
    run_wrk "$s" 0 "$WARMUP" >/dev/null
    sleep "$PAUSE"
done

ROUNDS_FILE=$WORK/rounds.jsonl
: >"$ROUNDS_FILE"
for ((r = 1; r <= ROUNDS; r++)); do
    # Alternate which server goes first, so neither always runs right after the other.
    if ((r % 2)); then this=("${order[@]}"); else this=(); for ((i = ${#order[@]} - 1; i >= 0; i--)); do this+=("${order[i]}"); done; fi
    for s in "${this[@]}"; do
        log "round $r/$ROUNDS: $s ($DURATION, $CONNECTIONS connections)"
        line=$(run_wrk "$s" "$r" "$DURATION")
        echo "$line" >>"$ROUNDS_FILE"
        sleep "$PAUSE"
    done
done

# ---------------------------------------------------------------------------- report

export KAI_BENCH_META_DATE KAI_BENCH_META_NPROC KAI_BENCH_META_CPU KAI_BENCH_META_KERNEL \
    KAI_BENCH_META_WRK_CMD KAI_BENCH_META_WRK_VERSION KAI_BENCH_META_PINNING KAI_BENCH_META_ROUNDS \
    KAI_BENCH_META_CONNECTIONS KAI_BENCH_META_KAI KAI_BENCH_META_FASTAPI
KAI_BENCH_META_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
KAI_BENCH_META_NPROC=$(nproc)
KAI_BENCH_META_CPU=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || echo unknown)
KAI_BENCH_META_KERNEL=$(uname -r)
KAI_BENCH_META_WRK_CMD="wrk -t1 -c$CONNECTIONS -d$DURATION --latency"
KAI_BENCH_META_WRK_VERSION=$({ wrk -v 2>&1 || true; } | head -n1 | awk '{print $1, $2}')
KAI_BENCH_META_PINNING=${PINNING:+servers on CPU $SERVER_CPU, wrk on CPU $WRK_CPU (taskset)}
KAI_BENCH_META_PINNING=${KAI_BENCH_META_PINNING:-unpinned}
KAI_BENCH_META_ROUNDS=$ROUNDS
KAI_BENCH_META_CONNECTIONS=$CONNECTIONS
rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo no-commit)
[[ -z $(git -C "$ROOT" status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null) ]] || rev="$rev+dirty"
KAI_BENCH_META_KAI="kai ($rev, ${KAI_BENCH_BIN:-profile ${KAI_BENCH_PROFILE:-release}})"
if [[ -x $VENV/bin/python ]]; then
    KAI_BENCH_META_FASTAPI=$("$VENV/bin/python" -c 'from importlib.metadata import version as v; import platform
print("FastAPI %s + uvicorn %s (uvloop, httptools) + SQLAlchemy %s, CPython %s" % (
    v("fastapi"), v("uvicorn"), v("sqlalchemy"), platform.python_version()))')
fi

mkdir -p "$CACHE/results"
RESULT=$CACHE/results/me-$(date -u +%Y%m%dT%H%M%SZ).md
echo
"$PYTHON" "$HERE/wrkstats.py" report "$ROUNDS_FILE" | tee "$RESULT"
echo
log "written to $RESULT"
