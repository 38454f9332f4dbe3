#!/usr/bin/env bash
# The main job: set up this machine, build, and run the faultline demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p faultline-node -p faultline-harness
exec ./target/release/faultline demo "$@"
