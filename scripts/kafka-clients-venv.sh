#!/usr/bin/env bash
# Installs the Python Kafka clients the node's real-client tests run
# (kafka-python, and confluent-kafka, whose wheel ships librdkafka), pinned,
# into a virtualenv under target/ that later runs reuse, and prints the path
# of its python. scripts/test.sh calls this first.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=("kafka-python==3.0.12" "confluent-kafka==2.16.1")
venv=${KAFKA_CLIENTS_VENV:-target/kafka-clients-venv}
python="$venv/bin/python"

# shellcheck source=scripts/need-python-venv.sh
. scripts/need-python-venv.sh
need_python_venv kafka-clients-venv
installed() {
    local spec
    for spec in "${PACKAGES[@]}"; do
        "$venv/bin/pip" show "${spec%%==*}" 2>/dev/null | grep -qx "Version: ${spec##*==}" || return 1
    done
}
if [ ! -x "$python" ] || ! installed; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${PACKAGES[@]}" >&2
fi
echo "$(cd "$(dirname "$python")" && pwd)/$(basename "$python")"
