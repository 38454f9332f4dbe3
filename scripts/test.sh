#!/usr/bin/env bash
# The whole test suite: unit, property and integration tests of every crate.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The workflow files, with actionlint; where actionlint cannot be fetched
# (it downloads its binary while installing) this says so loudly and skips.
LINT_WORKFLOWS_OFFLINE_OK=1 bash scripts/lint-workflows.sh
cargo test --workspace --locked "$@"
