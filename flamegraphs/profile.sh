#!/usr/bin/env bash
# Profiles the gateway under load and writes flamegraphs into this folder.
#
#   flamegraphs/profile.sh [SECONDS]
#
# Builds release binaries, then runs the bench-harness `pgbench-select` scenario for one round
# against the pass-through target (`sluice`) and the full-policy target (`sluice-policy`),
# with `perf record --call-graph dwarf` attached to each gateway while its load runs. Each
# (target, protocol) gets <target>-<protocol>.svg and .folded here; the run folder of the
# scenario is written as usual under bench-harness/runs/.
#
# Needs perf (Debian package linux-perf) and a kernel that lets this user profile its own
# processes (kernel.perf_event_paranoid <= 2, or root).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
if ! command -v perf >/dev/null 2>&1; then
    echo "profile: perf is not installed (Debian package linux-perf)" >&2
    exit 1
fi
cargo build --release -p sluice -p bench-harness
target_dir="${CARGO_TARGET_DIR:-target}"
exec "$target_dir/release/bench-harness" pgbench-select \
    --targets sluice,sluice-policy --rounds 1 --duration "$seconds" \
    --perf flamegraphs
