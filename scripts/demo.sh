#!/usr/bin/env bash
# The main job: set up this machine, build, show one broker surviving a
# SIGKILL, then run a short real chaos-free `faultline run` on a 3-node
# cluster in network namespaces and print its verdict. Needs root (for the
# namespaces), as the README says.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p faultline-node -p faultline-harness
./target/release/faultline demo "$@"
echo
echo "== faultline run: 3 nodes in network namespaces, acks=all, RF=3, min.insync.replicas=2, 15 s =="
exec ./target/release/faultline run --nodes 3 --time-limit 15 --rate 500 --acks all \
    --replication-factor 3 --min-insync-replicas 2 --store store --name demo
