#!/usr/bin/env bash
# The project's test command: installs missing system dependencies, then runs every test of the
# workspace with cargo-nextest when it is installed, else with cargo test. Extra arguments are
# passed to the test runner.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

if cargo nextest --version >/dev/null 2>&1; then
    echo "test: cargo nextest run --workspace $*"
    exec cargo nextest run --workspace "$@"
else
    echo "test: cargo test --workspace $* (install cargo-nextest for per-test processes)"
    exec cargo test --workspace "$@"
fi
