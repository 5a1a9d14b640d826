#!/usr/bin/env bash
# bench/mcp/run.sh -- what kai's MCP client costs: connecting to a server (start or reach it,
# handshake, list its tools) and calling a tool, one call at a time and 16 at once over one
# connection, against a Rust stdio server (kai's own, tests/support/test_server.rs), MCP's
# reference server-everything (Node) over stdio and over streamable HTTP, and kai's own server
# over streamable HTTP in the same process.
#
# Usage: bench/mcp/run.sh [CONNECTS] [CALLS]
#   CONNECTS  connections made and closed per server (default 20)
#   CALLS     sequential calls timed per server, and again spread over 16 callers (default 2000)
#
# Environment: KAI_BENCH_PROFILE (release, the default, or quick), and any CARGO_* variable.
# The reference servers come from scripts/mcp-test-deps (installed once, under the build
# directory).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

CONNECTS=${1:-20}
CALLS=${2:-2000}
PROFILE=${KAI_BENCH_PROFILE:-release}
TARGET=${CARGO_TARGET_DIR:-target}

eval "$(scripts/mcp-test-deps)"
cargo build --profile "$PROFILE" --locked -p kai-mcp --example mcp_latency --bin kai-mcp-test-server
BIN="$TARGET/$PROFILE/examples/mcp_latency"
TEST_SERVER="$TARGET/$PROFILE/kai-mcp-test-server"
EVERYTHING="$KAI_TEST_MCP_SERVERS/node_modules/.bin/mcp-server-everything"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PORT=$PORT "$EVERYTHING" streamableHttp >/dev/null 2>&1 &
HTTP_PID=$!
trap 'kill "$HTTP_PID" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
	(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
	sleep 0.1
done

echo "== kai $(git rev-parse --short HEAD), $(date -u +%F), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), profile $PROFILE, node $(node --version)"
echo "| server | transport | connect median (ms) | connect p90 (ms) | call median (µs) | call p99 (µs) | calls/s, 16 callers |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
row() {
	local label=$1 transport=$2 line
	shift 2
	line=$("$BIN" "$CONNECTS" "$CALLS" "$@")
	python3 -c '
import json, sys
r = json.loads(sys.argv[3])
c, k = r["connect_ms"], r["call_us"]
print("| %s | %s | %s | %s | %s | %s | %.0f |" % (sys.argv[1], sys.argv[2], c["median"], c["p90"],
      k["median"], k["p99"], r["calls_per_s_16_callers"]))' \
		"$label" "$transport" "$line"
}
row "kai test server (Rust)" stdio add '{"a": 1, "b": 2}' stdio "$TEST_SERVER"
row "server-everything (Node)" stdio echo '{"message": "hello"}' stdio "$EVERYTHING" stdio
row "server-everything (Node)" "streamable HTTP" echo '{"message": "hello"}' http "http://127.0.0.1:$PORT/mcp"
row "kai McpToolServer, in process" "streamable HTTP (stateless)" - - kai-http
