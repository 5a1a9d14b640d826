#!/usr/bin/env bash
# Local models: kai's embedded CPU runtime side by side with the peers the issue names, in one
# run on this machine.
#
#   bench/local/run.sh                       # everything, 3 rounds
#   ROUNDS=5 THREADS=2 bench/local/run.sh
#   PARTS="chat" bench/local/run.sh          # chat | embed | memory, any of them
#
# - chat: prompt tokens/s (a 512-token prompt) and generation tokens/s (128 tokens) of
#   SmolLM2-135M-Instruct Q4_1 with THREADS threads: kai's runtime (the `speed` example of
#   kai-local) against llama.cpp's `llama-bench` on the same file and threads. llama.cpp is
#   built with cmake from the copy vendored in the `llama-cpp-python` source package on PyPI.
# - embed: sentences/s for batches of 256 short sentences with all-MiniLM-L6-v2: kai (the
#   `embed_speed` example) against sentence-transformers on PyTorch's CPU backend.
# - memory: peak resident memory (VmHWM) of `kai serve` after one chat and one embedding
#   request, both models loaded.
#
# The models come from the model store `kai models pull` fills (KAI_BENCH_MODELS, default
# $KAI_BENCH_CACHE/models). Rounds alternate kai and the peer; figures are medians. Results go
# to stdout and $KAI_BENCH_CACHE/results/. Needs cmake and a C++ compiler for llama.cpp
# (Debian: apt-get install cmake g++), python3 with venv for sentence-transformers.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${KAI_BENCH_CACHE:-$HOME/.cache/kai-bench}
MODELS=${KAI_BENCH_MODELS:-$CACHE/models}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
PARTS=${PARTS:-chat embed memory}
PYTHON=${PYTHON:-python3}
LLAMA_CPP_PYTHON=0.3.36          # its sdist vendors llama.cpp
SENTENCE_TRANSFORMERS=6.2.0
TORCH=2.15.0
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '\n[bench] FAILED: %s\n' "$*" >&2; exit 1; }
median() { sort -g | awk '{v[NR]=$1} END {if (NR == 0) exit 1; print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

mkdir -p "$CACHE/results"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$CACHE/results/local-$STAMP.md
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kai-bench-local.XXXXXX")
SERVE_PID=""
cleanup() {
    [[ -n $SERVE_PID ]] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

PROFILE=${KAI_BENCH_PROFILE:-release}
log "building kai ($PROFILE) and kai-local's examples"
(cd "$ROOT" && cargo build --profile "$PROFILE" --locked -p kai-cli -p kai-local --examples --bin kai) >&2 ||
    die "cargo build failed"
KAI=$TARGET/$PROFILE/kai
log "pulling the default models into $MODELS (a no-op when they are there)"
env KAI_LOCAL_MODELS_DIR="$MODELS" KAI_DATA_DIR="$WORK/data" "$KAI" models pull >&2 ||
    die "kai models pull failed"
GGUF=$(find "$MODELS/smollm2" -name '*.gguf' | head -n 1)
MINILM=$MODELS/minilm
[[ -f $GGUF && -f $MINILM/model.safetensors ]] || die "the default models are not in $MODELS"
KAI_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)

{
    echo "### Local models, kai $KAI_COMMIT — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    echo "- Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -sr); load average at the start $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- Threads: $THREADS; rounds: $ROUNDS, alternating kai and the peer; figures are medians"
    echo
} >"$OUT"

if [[ " $PARTS " == *" chat "* ]]; then
    LLAMA_DIR=$CACHE/llama/llama_cpp_python-$LLAMA_CPP_PYTHON/vendor/llama.cpp
    LLAMA_BENCH=$LLAMA_DIR/build/bin/llama-bench
    if [[ ! -x $LLAMA_BENCH ]]; then
        command -v cmake >/dev/null || die "llama.cpp needs cmake (apt-get install cmake g++)"
        mkdir -p "$CACHE/llama"
        log "fetching llama-cpp-python $LLAMA_CPP_PYTHON's source (it vendors llama.cpp)"
        "$PYTHON" -m pip download --quiet --no-deps --no-binary :all: \
            "llama-cpp-python==$LLAMA_CPP_PYTHON" -d "$CACHE/llama" || die "pip download failed"
        tar xzf "$CACHE/llama/llama_cpp_python-$LLAMA_CPP_PYTHON.tar.gz" -C "$CACHE/llama"
        log "building llama-bench (cmake, Release, native CPU features)"
        cmake -S "$LLAMA_DIR" -B "$LLAMA_DIR/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF \
            -DLLAMA_OPENSSL=OFF -DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
            -DLLAMA_BUILD_SERVER=OFF -DBUILD_SHARED_LIBS=OFF >&2 || die "cmake configure failed"
        cmake --build "$LLAMA_DIR/build" -j "$(nproc)" --target llama-bench >&2 || die "cmake build failed"
    fi
    : >"$WORK/chat"
    for round in $(seq "$ROUNDS"); do
        log "chat, round $round/$ROUNDS: kai"
        line=$("$TARGET/$PROFILE/examples/speed" "$GGUF" "$THREADS" | tail -n 1)
        log "  $line"
        pp=$(sed -E 's/.*prompt ([0-9.]+) t\/s.*/\1/' <<<"$line")
        tg=$(sed -E 's/.*generation ([0-9.]+) t\/s.*/\1/' <<<"$line")
        echo "kai $pp $tg" >>"$WORK/chat"
        log "chat, round $round/$ROUNDS: llama.cpp"
        "$LLAMA_BENCH" -m "$GGUF" -t "$THREADS" -p 512 -n 128 -r 3 -o json >"$WORK/llama.json" 2>/dev/null ||
            die "llama-bench failed"
        read -r pp tg < <("$PYTHON" -c '
import json, sys
runs = json.load(open(sys.argv[1]))
pp = next(r["avg_ts"] for r in runs if r["n_prompt"] == 512 and r["n_gen"] == 0)
tg = next(r["avg_ts"] for r in runs if r["n_gen"] == 128 and r["n_prompt"] == 0)
print(f"{pp:.1f} {tg:.1f}")' "$WORK/llama.json")
        log "  prompt $pp t/s, generation $tg t/s"
        echo "llama $pp $tg" >>"$WORK/chat"
    done
    LLAMA_VERSION=$("$LLAMA_BENCH" --version 2>&1 | head -n 1 || true)
    kpp=$(awk '$1=="kai"{print $2}' "$WORK/chat" | median)
    ktg=$(awk '$1=="kai"{print $3}' "$WORK/chat" | median)
    lpp=$(awk '$1=="llama"{print $2}' "$WORK/chat" | median)
    ltg=$(awk '$1=="llama"{print $3}' "$WORK/chat" | median)
    {
        echo "**Chat: $(basename "$GGUF"), $THREADS threads** (llama.cpp from llama-cpp-python $LLAMA_CPP_PYTHON: $LLAMA_VERSION)"
        echo
        echo "| | prompt t/s (pp512) | generation t/s (tg128) |"
        echo "| --- | ---: | ---: |"
        echo "| kai | $kpp | $ktg |"
        echo "| llama.cpp \`llama-bench\` | $lpp | $ltg |"
        echo "| kai / llama.cpp | $(awk -v a="$kpp" -v b="$lpp" 'BEGIN{printf "%.2f×", a/b}') (target ≥ 0.5×) | $(awk -v a="$ktg" -v b="$ltg" 'BEGIN{printf "%.2f×", a/b}') (target ≥ 0.8×) |"
        echo
        echo "Per round (kai, then llama.cpp: prompt, generation): $(awk '{printf "%s%s %s/%s", (NR>1?"; ":""), $1, $2, $3}' "$WORK/chat")"
        echo
    } >>"$OUT"
fi

if [[ " $PARTS " == *" embed "* ]]; then
    VENV=$CACHE/venv-local
    if ! "$VENV/bin/python" -c "import sentence_transformers" 2>/dev/null; then
        log "installing sentence-transformers $SENTENCE_TRANSFORMERS and torch $TORCH into $VENV"
        "$PYTHON" -m venv "$VENV"
        "$VENV/bin/pip" install --quiet "torch==$TORCH" "sentence-transformers==$SENTENCE_TRANSFORMERS" ||
            die "pip install failed"
    fi
    "$PYTHON" "$HERE/sentences.py" 256 >"$WORK/sentences.txt"
    : >"$WORK/embed"
    for round in $(seq "$ROUNDS"); do
        log "embeddings, round $round/$ROUNDS: kai"
        "$TARGET/$PROFILE/examples/embed_speed" "$MINILM" "$THREADS" 3 <"$WORK/sentences.txt" >"$WORK/kai.jsonl" ||
            die "embed_speed failed"
        rate=$("$PYTHON" -c 'import json,sys,statistics; r=[json.loads(l) for l in open(sys.argv[1])]; print(round(statistics.median(x["sentences"]/x["seconds"] for x in r), 1))' "$WORK/kai.jsonl")
        log "  $rate sentences/s"
        echo "kai $rate" >>"$WORK/embed"
        log "embeddings, round $round/$ROUNDS: sentence-transformers"
        (cd "$HERE" && "$VENV/bin/python" st_embed.py "$MINILM" "$THREADS" 3 2>/dev/null) >"$WORK/st.jsonl" ||
            die "st_embed.py failed"
        rate=$("$PYTHON" -c 'import json,sys,statistics; r=[json.loads(l) for l in open(sys.argv[1])]; print(round(statistics.median(x["sentences"]/x["seconds"] for x in r), 1))' "$WORK/st.jsonl")
        log "  $rate sentences/s"
        echo "st $rate" >>"$WORK/embed"
    done
    k=$(awk '$1=="kai"{print $2}' "$WORK/embed" | median)
    s=$(awk '$1=="st"{print $2}' "$WORK/embed" | median)
    {
        echo "**Embeddings: all-MiniLM-L6-v2, batches of 256 short sentences, $THREADS threads** (sentence-transformers $SENTENCE_TRANSFORMERS, torch $TORCH CPU)"
        echo
        echo "| | sentences/s |"
        echo "| --- | ---: |"
        echo "| kai | $k |"
        echo "| sentence-transformers | $s |"
        echo "| kai / sentence-transformers | $(awk -v a="$k" -v b="$s" 'BEGIN{printf "%.2f×", a/b}') (target ≥ 1.0×) |"
        echo
        echo "Per round: $(awk '{printf "%s%s %s", (NR>1?"; ":""), $1, $2}' "$WORK/embed")"
        echo
    } >>"$OUT"
fi

if [[ " $PARTS " == *" memory "* ]]; then
    log "memory: kai serve with both models loaded"
    port=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    export KAI_DATA_DIR=$WORK/serve KAI_LOCAL_MODELS_DIR=$MODELS KAI_LOCAL_THREADS=$THREADS
    printf 'correct horse battery\n' | "$KAI" user create --admin bench >/dev/null 2>&1 || die "kai user create failed"
    "$KAI" serve --bind "127.0.0.1:$port" 2>"$WORK/serve.log" &
    SERVE_PID=$!
    "$PYTHON" - "$port" <<'PY' || die "requests to kai serve failed (log: $WORK/serve.log)"
import json, sys, time, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
def call(path, body, token=None):
    request = urllib.request.Request(base + path, json.dumps(body).encode(), {"content-type": "application/json"})
    if token:
        request.add_header("authorization", f"Bearer {token}")
    return json.load(urllib.request.urlopen(request, timeout=300))
for _ in range(100):
    try:
        tokens = call("/api/v1/auth/login", {"username": "bench", "password": "correct horse battery"})
        break
    except OSError:
        time.sleep(0.2)
token = tokens["access_token"]
call("/v1/chat/completions", {"model": "local/smollm2", "max_tokens": 32,
     "messages": [{"role": "user", "content": "What is the capital of France?"}]}, token)
call("/v1/embeddings", {"model": "local/minilm", "input": ["one sentence", "another one"] * 128}, token)
PY
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$SERVE_PID/status")
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$SERVE_PID/status")
    kill "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true; SERVE_PID=""
    {
        echo "**Memory: \`kai serve\` after a chat and a 256-input embedding request, both models loaded**"
        echo
        echo "| peak resident (VmHWM) | resident after (VmRSS) | target |"
        echo "| ---: | ---: | ---: |"
        echo "| $((hwm / 1024)) MiB | $((rss / 1024)) MiB | < 400 MiB |"
        echo
    } >>"$OUT"
fi

echo "- Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT"
cat "$OUT"
log "written to $OUT"
