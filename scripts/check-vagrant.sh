#!/usr/bin/env bash
# Checks vagrant/ without booting a VM: the Vagrantfile parses (ruby -c) and
# validates for 3 and 5 nodes and refuses other counts (vagrant validate),
# and the provisioning script passes shellcheck. scripts/setup.sh installs
# vagrant, ruby and shellcheck.
set -euo pipefail
cd "$(dirname "$0")/../vagrant"

for cmd in vagrant ruby shellcheck; do
    if ! command -v "$cmd" >/dev/null 2>&1; then
        echo "check-vagrant: $cmd not found; install the Debian package $cmd (scripts/setup.sh does)" >&2
        exit 1
    fi
done
ruby -c Vagrantfile >/dev/null
shellcheck provision.sh
for n in 3 5; do
    FAULTLINE_NODES=$n vagrant validate >/dev/null
done
if FAULTLINE_NODES=4 vagrant validate >/dev/null 2>&1; then
    echo "check-vagrant: the Vagrantfile accepted FAULTLINE_NODES=4" >&2
    exit 1
fi
echo "check-vagrant: Vagrantfile valid for 3 and 5 nodes, provision.sh clean"
