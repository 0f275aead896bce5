#!/usr/bin/env bash
# Profiles the gateway under load and writes flamegraphs into this folder.
#
#   flamegraphs/profile.sh [SECONDS] [BENCH-HARNESS OPTIONS...]
#   PROFILE_WITH=perf|inprocess flamegraphs/profile.sh ...   # force one profiler
#
# Builds release binaries, then runs the bench-harness `pgbench-select` scenario for one round
# against the pass-through target (`sluice`) and the full-policy target (`sluice-policy`),
# profiling each gateway while its load runs. Extra options go to bench-harness after the
# defaults, so they override them (e.g. `--targets sluice-policy --protocols simple`).
#
# With perf (when installed and allowed to record: a `perf record -- true` is tried first),
# `perf record --call-graph dwarf` is attached to each gateway and each (target, protocol) gets
# <target>-<protocol>.svg and .folded here. Otherwise sluice is built with its in-process
# sampler (`--features profiler`) and each run goes to a fresh gateway that samples itself;
# its graphs are named inprocess-<target>-<protocol>.svg (and .folded). The run folder of the
# scenario is written as usual under bench-harness/runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
shift || true
target_dir="${CARGO_TARGET_DIR:-target}"
harness_args=(pgbench-select --targets sluice,sluice-policy --rounds 1 --duration "$seconds")

perf_works() {
    command -v perf >/dev/null 2>&1 || return 1
    local data
    data="$(mktemp)"
    perf record -q -o "$data" -- true >/dev/null 2>&1
    local status=$?
    rm -f "$data"
    return "$status"
}

with="${PROFILE_WITH:-}"
if [[ -z "$with" ]]; then
    if perf_works; then with=perf; else with=inprocess; fi
fi

case "$with" in
perf)
    if ! perf_works; then
        echo "profile: perf is not installed (Debian package linux-perf) or may not record" \
            "here (kernel.perf_event_paranoid, or no perf_event_open in this container);" \
            "PROFILE_WITH=inprocess uses the gateway's own sampler instead" >&2
        exit 1
    fi
    cargo build --release -p sluice -p bench-harness
    exec "$target_dir/release/bench-harness" "${harness_args[@]}" --perf flamegraphs "$@"
    ;;
inprocess)
    echo "profile: using sluice's in-process sampler (perf unavailable or not chosen)" >&2
    cargo build --release -p sluice -p bench-harness --features sluice/profiler
    out="$(mktemp -d)"
    trap 'rm -rf "$out"' EXIT
    "$target_dir/release/bench-harness" "${harness_args[@]}" --profile "$out" "$@"
    found=0
    for file in "$out"/*.svg "$out"/*.folded; do
        [[ -e "$file" ]] || continue
        cp "$file" "flamegraphs/inprocess-$(basename "$file")"
        echo "profile: flamegraphs/inprocess-$(basename "$file")" >&2
        found=1
    done
    if [[ "$found" == 0 ]]; then
        echo "profile: no flamegraph was written; see the bench-harness messages above" >&2
        exit 1
    fi
    ;;
*)
    echo "profile: PROFILE_WITH must be perf or inprocess, not \`$with\`" >&2
    exit 2
    ;;
esac
