#!/usr/bin/env bash
# The main job: set up this machine, build, and run the headline claims of
# the built-in `seed-claims` campaign (one seed each, a few minutes): real
# clusters in network namespaces, real client processes killed, a real
# SQLite sink, each claim checked against its expected outcome. Ends with
# the campaign's table. Needs root (for the namespaces), as the README says.
# Extra arguments go to `faultline campaign` (e.g. --only c4-acks1-leader-kill).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p faultline-node -p faultline-harness
exec ./target/release/faultline campaign --builtin seed-claims --only headline --seeds 1 --store store "$@"
