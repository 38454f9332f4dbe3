# shellcheck shell=bash
# Sourced by the scripts that install a PyPI tool into a virtualenv:
# need_python_venv NAME exits, naming NAME and the missing Debian package,
# unless python3 can create virtualenvs.
need_python_venv() {
    if ! command -v python3 >/dev/null 2>&1; then
        echo "$1: python3 not found; install the Debian package python3 (scripts/setup.sh does)" >&2
        exit 1
    fi
    if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        echo "$1: python3 cannot create virtualenvs; install the Debian package python3-venv (scripts/setup.sh does)" >&2
        exit 1
    fi
}
