#!/usr/bin/env bash
# Installs openapi-spec-validator (PyPI, pinned) into a virtualenv under
# target/ that later runs reuse, and prints the path of its command. The
# node's integration test `the_document_passes_openapi_spec_validator` runs
# it on the document a live node serves (scripts/test.sh calls this first).
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=0.9.0
venv=${OPENAPI_VALIDATOR_VENV:-target/openapi-venv}
bin="$venv/bin/openapi-spec-validator"

# shellcheck source=scripts/need-python-venv.sh
. scripts/need-python-venv.sh
need_python_venv openapi-validator
if [ ! -x "$bin" ] || ! "$venv/bin/pip" show openapi-spec-validator 2>/dev/null | grep -qx "Version: $VERSION"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "openapi-spec-validator==$VERSION" >&2
fi
echo "$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
