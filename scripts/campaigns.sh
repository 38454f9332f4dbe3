#!/usr/bin/env bash
# Both built-in campaigns, seed-claims then bug-hunt, as the nightly
# workflow runs them: set up, build, run each into store/ with its JUnit
# file in store/junit/, print each table. Needs root (network namespaces).
# Extra arguments go to both campaigns (e.g. --seeds 1, --only headline).
# Exits with the worse of the two codes: 255 > 254 > 1 > 2 > 0.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p faultline-node -p faultline-harness

rank() { case "$1" in 0) echo 0 ;; 2) echo 1 ;; 1) echo 2 ;; 254) echo 3 ;; *) echo 4 ;; esac; }
worst=0
for name in seed-claims bug-hunt; do
    echo "== faultline campaign --builtin $name =="
    code=0
    ./target/release/faultline campaign --builtin "$name" --store store --junit "store/junit/$name.xml" "$@" || code=$?
    echo "== $name exited $code =="
    if [ "$(rank "$code")" -gt "$(rank "$worst")" ]; then
        worst=$code
    fi
done
exit "$worst"
