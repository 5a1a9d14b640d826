#!/usr/bin/env bash
# bench/audit/run.sh -- audit log throughput: appends per second with many concurrent callers
# (group commit: each caller waits until its entry is durable) and verification per second,
# on SQLite, and on PostgreSQL when KAI_BENCH_DATABASE_URL names one.
#
# Usage: bench/audit/run.sh [ENTRIES] [CALLERS] [ROUNDS]
#   ENTRIES  entries appended per round (default 50000)
#   CALLERS  concurrent callers (default 1024); also runs 1 caller, 2000 entries, for contrast
#   ROUNDS   rounds per backend (default 3); medians are printed
#
# Environment: KAI_BENCH_DATABASE_URL (postgres://…, a database the run may fill), and any
# CARGO_* variable (CARGO_PROFILE_RELEASE_LTO=false for a faster, slightly slower build).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

ENTRIES=${1:-50000}
CALLERS=${2:-1024}
ROUNDS=${3:-3}

PROFILE=${KAI_BENCH_PROFILE:-release}
cargo build --profile "$PROFILE" --locked -p kai-audit --example throughput
BIN="${CARGO_TARGET_DIR:-target}/$PROFILE/examples/throughput"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

run_backend() {
	local label=$1 url=${2:-}
	local appends=() verifies=()
	for round in $(seq "$ROUNDS"); do
		line=$("$BIN" "$ENTRIES" "$CALLERS" ${url:+"$url"})
		echo "$label round $round: $line"
		appends+=("$(sed -E 's/.*"append_per_s":([0-9]+).*/\1/' <<<"$line")")
		verifies+=("$(sed -E 's/.*"verify_per_s":([0-9]+).*/\1/' <<<"$line")")
	done
	echo "$label median: append $(printf '%s\n' "${appends[@]}" | median)/s, verify $(printf '%s\n' "${verifies[@]}" | median)/s"
	line=$("$BIN" 2000 1 ${url:+"$url"})
	echo "$label, one caller (no batching), 2000 entries: $line"
}

echo "== kai $(git rev-parse --short HEAD), $(date -u +%F), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
run_backend sqlite
if [[ -n ${KAI_BENCH_DATABASE_URL:-} ]]; then
	run_backend postgres "$KAI_BENCH_DATABASE_URL"
fi
