#!/usr/bin/env bash
# Makes the README's pictures under docs/img/ from the tests that render the
# reports in headless Chromium: the campaign test's run and campaign reports
# (a real two-cell campaign on a namespace cluster, so root is needed) and
# the store browser's index. The same tests run in CI; here they also copy
# their screenshots (FAULTLINE_SCREENSHOTS).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --locked -p faultline-node
mkdir -p docs/img
export FAULTLINE_SCREENSHOTS="$PWD/docs/img"
cargo test --locked -p faultline-harness --test campaign a_two_cell_campaign_meets_a_valid_and_an_invalid_expectation
cargo test --locked -p faultline-harness --test serve the_index_lists_filters_and_renders
ls -l docs/img
