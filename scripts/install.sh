#!/usr/bin/env bash
# Installs `faultline` and `faultline-node` side by side (the harness finds
# the node binary next to its own), so that bare `faultline` and
# `sudo faultline` work. PREFIX defaults to /usr/local (binaries in
# $PREFIX/bin); installing there needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix="${PREFIX:-/usr/local}"
bash scripts/setup.sh
cargo install --locked --path node --root "$prefix"
cargo install --locked --path harness --root "$prefix"
echo "installed: $prefix/bin/faultline and $prefix/bin/faultline-node"
