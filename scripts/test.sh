#!/usr/bin/env bash
# The test command from the README: provision fixture toolchains, then run every test
# (unit tests and the integration tests that drive the real binary over stdio).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/provision.sh
export TESTRELAY_FIXTURE_VENV="$PWD/target/fixture-env/venv"
cargo test --locked "$@"
