#!/usr/bin/env bash
# bench/sandbox/run.sh -- what a sandboxed command costs to start: `true` spawned directly,
# through bare bubblewrap, and through kai's Sandbox::run, interleaved, RUNS times each per
# round (crates/kai-sandbox/examples/startup.rs).
#
# Usage: bench/sandbox/run.sh [RUNS] [ROUNDS]
#   RUNS    runs of each per round (default 200)
#   ROUNDS  rounds (default 3); each round's median and p99 are printed, then the medians
#
# Needs bubblewrap (`apt-get install bubblewrap`). Environment: KAI_BENCH_PROFILE (default
# release), and any CARGO_* variable.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

RUNS=${1:-200}
ROUNDS=${2:-3}

PROFILE=${KAI_BENCH_PROFILE:-release}
cargo build --profile "$PROFILE" --locked -p kai-sandbox --example startup
BIN="${CARGO_TARGET_DIR:-target}/$PROFILE/examples/startup"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
field() { sed -E "s/.*\"$1\":\\{\"median_us\":([0-9]+),\"p99_us\":([0-9]+)\\}.*/\\$2/" <<<"$3"; }

# The load average goes in the header: on a shared machine it moves these figures by 2-3x.
echo "== kai $(git rev-parse --short HEAD), $(date -u +%F), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(bwrap --version), $(id -un), load $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A medians
for round in $(seq "$ROUNDS"); do
	line=$("$BIN" "$RUNS")
	echo "round $round: $line"
	for way in direct bwrap sandbox; do
		medians[$way.50]+="$(field "$way" 1 "$line") "
		medians[$way.99]+="$(field "$way" 2 "$line") "
	done
done
echo
echo "| \`true\`, $RUNS runs × $ROUNDS rounds | median (µs) | p99 (µs) |"
echo "| --- | ---: | ---: |"
for way in direct bwrap sandbox; do
	m50=$(tr ' ' '\n' <<<"${medians[$way.50]}" | grep . | median)
	m99=$(tr ' ' '\n' <<<"${medians[$way.99]}" | grep . | median)
	echo "| $way | $m50 | $m99 |"
done
