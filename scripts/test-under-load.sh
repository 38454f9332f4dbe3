#!/usr/bin/env bash
# The whole test suite N times in a row (default 5) while busy loops keep
# LOAD cores (default 1) at 100%, the way a shared CI runner is loaded:
# the proof that no test depends on the machine's speed. Each run's log is
# target/test-under-load/run-I.log; prints each run's result and "passed K
# of N", and exits 0 only when every run passed. Needs root, as the suite.
#   bash scripts/test-under-load.sh [N] [LOAD]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
load=${2:-1}
out=target/test-under-load
mkdir -p "$out"

busy=()
stop_load() {
    for pid in "${busy[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
}
trap stop_load EXIT
for _ in $(seq "$load"); do
    # A shell loop that never sleeps: one core at 100% for the whole time.
    bash -c 'while :; do :; done' &
    busy+=("$!")
done
echo "test-under-load: $load busy loop(s) started: ${busy[*]}"

passed=0
for i in $(seq "$runs"); do
    start=$(date +%s)
    if bash scripts/test.sh >"$out/run-$i.log" 2>&1; then
        result=passed
        passed=$((passed + 1))
    else
        result="FAILED (see $out/run-$i.log)"
    fi
    echo "run $i of $runs: $result in $(($(date +%s) - start)) s"
done
echo "passed $passed of $runs under $load busy core(s)"
[ "$passed" -eq "$runs" ]
