#!/usr/bin/env bash
# Knowledge search: quality on the Lee corpus against Open WebUI's hybrid recipe, and speed,
# recall and memory at 100,000 chunks against Chroma, in one run on this machine.
#
#   bench/knowledge/run.sh                          # both parts, 100,000 chunks, 3 rounds × 10 s
#   PARTS=quality bench/knowledge/run.sh            # quality | speed, any of them
#   CHUNKS=20000 ROUNDS=5 bench/knowledge/run.sh
#   KAI_BENCH_BIN=target/quick/kai bench/knowledge/run.sh   # skip the cargo build
#   KAI_BENCH_PROFILE=quick bench/knowledge/run.sh          # scripts/run's profile (default release)
#   KAI_BENCH_VECTOR_BIN=target/quick/deps/kai_knowledge-… # kai-knowledge's test binary, prebuilt
#   bench/knowledge/run.sh --postgres postgres://kai:kai@127.0.0.1:5432/kai_bench
#                                    # each part on SQLite (embedded indexes), then on PostgreSQL
#   DATABASES=postgres CHUNKS=20000 bench/knowledge/run.sh --postgres URL   # PostgreSQL alone
#   KEYWORD_ONLY=1 PARTS=speed bench/knowledge/run.sh   # speed's indexing without the model alone
#
# --postgres URL: kai's database for the PostgreSQL side (KAI_DATABASE_URL), its search inside
# it (KAI_KNOWLEDGE_SEARCH_INDEX=database: full-text search and pgvector's HNSW). The database
# named in URL is DROPPED and made afresh for every new server, through PG_ADMIN_URL (a
# superuser on the same server; default the URL's host as user postgres, database postgres),
# which also creates the vector extension in it (pgvector 0.8+). psql comes from PSQL (default:
# the one on PATH). DATABASES picks the sides (default "sqlite postgres" with --postgres,
# "sqlite" without). On PostgreSQL, speed leaves Chroma out (TARGETS default "kai-hybrid
# kai-semantic"), pins the backends serving kai to DB_CPU (default SERVER_CPU; "none" leaves
# them unpinned) and times the database's own statements instead of kai's embedded vector index.
#
# - quality (quality.py): the 50 Lee documents uploaded to a fresh kai serve, each the query
#   for the other 49, nDCG@10 with the human similarity ratings as graded relevance, for
#   keyword, semantic and hybrid (both fusions, then a sweep of the fusion settings), and for
#   Open WebUI's recipe (LangChain's BM25Retriever + vector search, EnsembleRetriever's weighted
#   RRF) over kai's chunks and kai's vectors.
# - speed (speed.py): CHUNKS short chunks indexed (with no embedding model, then with
#   local/minilm), kai serve restarted on SERVER_CPU, Chroma (`chroma run`, on SERVER_CPU) given
#   the vectors kai stored; recall@10 of both against numpy's exact search; closed-loop load at
#   CLIENTS concurrent clients from LOAD_CPU, rounds alternating kai's hybrid and semantic
#   search, Chroma's query, and Chroma's query after embedding it with the same MiniLM (kai's
#   /v1/embeddings); kai serve's resident memory; kai's vector index alone on the same vectors
#   (kai-knowledge's ignored test `search_speed`, built here as a test binary).
#
# The Python packages (requirements.txt: gensim 4.4.0 with the Lee corpus, chromadb, rank-bm25,
# langchain-community) go into ${CARGO_TARGET_DIR:-target}/bench-knowledge-venv. The embedding
# model comes from the model store `kai models pull minilm` fills (KAI_BENCH_MODELS, default
# $KAI_BENCH_CACHE/models); nothing is fetched from Hugging Face: the peers' vectors are kai's.
# Results go to stdout and $KAI_BENCH_CACHE/results/ (Markdown and the JSON behind it).
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${KAI_BENCH_CACHE:-$HOME/.cache/kai-bench}
MODELS=${KAI_BENCH_MODELS:-$CACHE/models}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
VENV=$TARGET/bench-knowledge-venv
PYTHON=${PYTHON:-python3}
PARTS=${PARTS:-quality speed}
CHUNKS=${CHUNKS:-100000}
PER_ARTIFACT=${PER_ARTIFACT:-100}
QUERIES=${QUERIES:-200}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
CLIENTS=${CLIENTS:-1 8}
TARGETS=${TARGETS:-kai-hybrid kai-semantic chroma embed-chroma}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SWEEP_WEIGHTS=${SWEEP_WEIGHTS:-0 10 20 30 40 50 60 70 80 90 100}
SWEEP_RRF_K=${SWEEP_RRF_K:-60 20}
POSTGRES=
while (($#)); do
    case $1 in
        --postgres) POSTGRES=${2:?--postgres wants a URL}; shift 2 ;;
        --postgres=*) POSTGRES=${1#--postgres=}; shift ;;
        *) printf 'usage: %s [--postgres postgres://ROLE:PASSWORD@HOST:PORT/DATABASE]\n' "$0" >&2; exit 2 ;;
    esac
done
if [[ -n $POSTGRES ]]; then DATABASES=${DATABASES:-sqlite postgres}; else DATABASES=${DATABASES:-sqlite}; fi
[[ " $DATABASES " != *" postgres "* || -n $POSTGRES ]] || { echo "DATABASES=postgres needs --postgres URL" >&2; exit 2; }
PG_TARGETS=${PG_TARGETS:-kai-hybrid kai-semantic}
DB_CPU=${DB_CPU:-$SERVER_CPU}
PG_ARGS=()
if [[ -n $POSTGRES ]]; then
    PSQL=${PSQL:-$(command -v psql || true)}
    [[ -x $PSQL ]] || { echo "--postgres needs psql: put it on PATH or set PSQL" >&2; exit 2; }
    PG_ARGS=(--postgres "$POSTGRES" --psql "$PSQL")
    [[ -z ${PG_ADMIN_URL:-} ]] || PG_ARGS+=(--postgres-admin "$PG_ADMIN_URL")
fi

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '\n[bench] FAILED: %s\n' "$*" >&2; exit 1; }

mkdir -p "$CACHE/results"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$CACHE/results/knowledge-$STAMP.md
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kai-bench-knowledge.XXXXXX")
cleanup() {
    if [[ -n ${KEEP_WORK:-} ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

if [[ -n ${KAI_BENCH_BIN:-} ]]; then
    KAI=$(cd "$(dirname "$KAI_BENCH_BIN")" && pwd)/$(basename "$KAI_BENCH_BIN")
    PROFILE="(prebuilt $KAI_BENCH_BIN)"
else
    PROFILE=${KAI_BENCH_PROFILE:-release}
    log "building kai ($PROFILE)"
    (cd "$ROOT" && cargo build --profile "$PROFILE" --locked -p kai-cli --bin kai) >&2 ||
        die "cargo build failed"
    KAI=$TARGET/$PROFILE/kai
fi
[[ -x $KAI ]] || die "no kai binary at $KAI"

VECTOR_BENCH=${KAI_BENCH_VECTOR_BIN:+$(cd "$(dirname "$KAI_BENCH_VECTOR_BIN")" && pwd)/$(basename "$KAI_BENCH_VECTOR_BIN")}
if [[ " $PARTS " == *" speed "* && " $DATABASES " == *" sqlite "* && -z $VECTOR_BENCH ]]; then
    log "building kai-knowledge's search_speed (${KAI_BENCH_PROFILE:-release})"
    VECTOR_BENCH=$(cd "$ROOT" && cargo test --profile "${KAI_BENCH_PROFILE:-release}" --locked \
        -p kai-knowledge --lib --no-run --message-format=json |
        "$PYTHON" -c 'import json, sys
print([m["executable"] for m in map(json.loads, sys.stdin)
       if m.get("reason") == "compiler-artifact" and m.get("executable")][-1])') ||
        die "cargo test --no-run failed"
fi

REQS=$HERE/requirements.txt
STAMP_FILE=$VENV/.requirements.sha256
want=$(sha256sum "$REQS" | cut -d' ' -f1)
if [[ ! -x $VENV/bin/python || $(cat "$STAMP_FILE" 2>/dev/null) != "$want" ]]; then
    log "installing the pinned Python packages into $VENV"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet -r "$REQS" || die "pip install failed"
    echo "$want" >"$STAMP_FILE"
fi

log "pulling minilm into $MODELS (a no-op when it is there)"
env -i PATH="$PATH" HOME="$WORK/home" KAI_LOCAL_MODELS_DIR="$MODELS" KAI_DATA_DIR="$WORK/pull" \
    "$KAI" models pull minilm >&2 || die "kai models pull failed"

KAI_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)
DIRTY=$(git -C "$ROOT" status --porcelain --untracked-files=no | grep -q . && echo " (with uncommitted changes)" || true)
{
    echo "### Knowledge search, kai $KAI_COMMIT$DIRTY — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    echo "- Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -sr); load average at the start $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- kai: $PROFILE build, $KAI"
    if [[ -n $POSTGRES ]]; then
        echo "- PostgreSQL: $("$PSQL" -X -At -d "${POSTGRES%/*}/postgres" -c "SELECT current_setting('server_version')" 2>/dev/null || echo '?') at ${POSTGRES%%/*}//…@${POSTGRES##*@}"
    fi
    echo
} >"$OUT"

cd "$HERE"
for DB in $DATABASES; do
    DB_ARGS=()
    SPEED_ARGS=()
    SPEED_TARGETS=$TARGETS
    if [[ $DB == postgres ]]; then
        DB_ARGS=("${PG_ARGS[@]}")
        SPEED_ARGS=(--db-cpu "$DB_CPU")
        SPEED_TARGETS=$PG_TARGETS
    fi
    if [[ " $PARTS " == *" quality "* ]]; then
        log "quality: the Lee corpus, kai on $DB"
        "$VENV/bin/python" quality.py --kai "$KAI" --models "$MODELS" \
            --sweep-weights "$SWEEP_WEIGHTS" --sweep-rrf-k "$SWEEP_RRF_K" \
            "${DB_ARGS[@]}" >"$WORK/quality-$DB.json" || die "quality.py ($DB) failed"
        cp "$WORK/quality-$DB.json" "$CACHE/results/knowledge-quality-$DB-$STAMP.json"
        "$VENV/bin/python" report.py --quality "$WORK/quality-$DB.json" >>"$OUT"
    fi
    if [[ " $PARTS " == *" speed "* ]]; then
        log "speed: $CHUNKS chunks, kai on $DB ($SPEED_TARGETS)"
        "$VENV/bin/python" speed.py --kai "$KAI" --models "$MODELS" --chroma "$VENV/bin/chroma" \
            --work "$WORK/speed-$DB" --chunks "$CHUNKS" --per-artifact "$PER_ARTIFACT" \
            --queries "$QUERIES" --rounds "$ROUNDS" --duration "$DURATION" --warmup "$WARMUP" \
            --clients "$CLIENTS" --targets "$SPEED_TARGETS" --server-cpu "$SERVER_CPU" \
            --load-cpu "$LOAD_CPU" ${VECTOR_BENCH:+--vector-bench "$VECTOR_BENCH"} \
            ${KEYWORD_ONLY:+--keyword-only-alone} \
            "${DB_ARGS[@]}" "${SPEED_ARGS[@]}" >"$WORK/speed-$DB.json" || die "speed.py ($DB) failed"
        cp "$WORK/speed-$DB.json" "$CACHE/results/knowledge-speed-$DB-$STAMP.json"
        "$VENV/bin/python" report.py --speed "$WORK/speed-$DB.json" >>"$OUT"
    fi
done
echo "- Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT"
cat "$OUT"
log "results: $OUT"
