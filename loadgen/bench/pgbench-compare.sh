#!/usr/bin/env bash
# Compares sluice-loadgen with pgbench on pgbench's select-only workload (-S), one client thread
# each, 8 connections, against the same PostgreSQL server, both protocols, interleaved rounds.
# Prints requests per second and client CPU per request; keeps the raw output in OUT_DIR.
#
# usage: pgbench-compare.sh OUT_DIR [ROUNDS] [SECONDS]
# The server is taken from PGHOST, PGPORT, PGUSER, PGPASSWORD and PGDATABASE; the database must
# hold pgbench's tables at scale 1 (`pgbench -i -s 1`). LOADGEN is the sluice-loadgen binary
# (default: target/release/sluice-loadgen), PGBIN the directory holding pgbench.
set -euo pipefail

out=${1:?usage: $0 OUT_DIR [ROUNDS] [SECONDS]}
rounds=${2:-2}
secs=${3:-10}
loadgen=${LOADGEN:-target/release/sluice-loadgen}
pgbin=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)}
: "${PGHOST:=127.0.0.1}" "${PGPORT:=5432}" "${PGUSER:=postgres}" "${PGDATABASE:=postgres}"
export PGHOST PGPORT PGUSER PGDATABASE

mkdir -p "$out"
# pgbench -S at scale 1: \set aid random(1, 100000) then this statement.
printf 'SELECT abalance FROM pgbench_accounts WHERE aid = {rand 1 100000};\n' >"$out/select.sql"
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r)"
    echo "pgbench: $("$pgbin/pgbench" --version)"
    echo "loadgen: $("$loadgen" --version)"
    echo "server: $PGHOST:$PGPORT/$PGDATABASE; rounds $rounds, $secs s each"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/env.txt"

for round in $(seq 1 "$rounds"); do
    for proto in simple prepared; do
        tag="$proto-$round"
        /usr/bin/time -f "%e %U %S" -o "$out/pgbench-$tag.time" \
            "$pgbin/pgbench" -n -S -j 1 -c 8 -T "$secs" -M "$proto" >"$out/pgbench-$tag.txt" 2>&1 || true
        /usr/bin/time -f '%e %U %S' -o "$out/loadgen-$tag.time" \
            "$loadgen" pg -f "$out/select.sql" -j 1 -c 8 -T "${secs}s" -M "$proto" \
            --json-out "$out/loadgen-$tag.json" >"$out/loadgen-$tag.txt" 2>&1 || true
    done
done

echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/env.txt"

# One line per run: tool, protocol, round, requests/s, client CPU µs per request.
summary="$out/summary.txt"
printf '%-8s %-9s %5s %12s %14s\n' tool protocol round 'req/s' 'cpu_us/req' >"$summary"
for round in $(seq 1 "$rounds"); do
    for proto in simple prepared; do
        tag="$proto-$round"
        pg_tps=$(sed -n 's/^tps = \([0-9.]*\) (without.*/\1/p' "$out/pgbench-$tag.txt")
        pg_tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out/pgbench-$tag.txt")
        lg_tps=$(sed -n 's/^ *"throughput_rps": \([0-9.]*\).*/\1/p' "$out/loadgen-$tag.json")
        lg_tx=$(sed -n 's/^ *"successes": \([0-9]*\).*/\1/p' "$out/loadgen-$tag.json")
        read -r _ pu ps <"$out/pgbench-$tag.time"
        read -r _ lu ls <"$out/loadgen-$tag.time"
        awk -v t=pgbench -v p="$proto" -v r="$round" -v tps="$pg_tps" -v u="$pu" -v s="$ps" -v n="$pg_tx" \
            'BEGIN { printf "%-8s %-9s %5s %12.0f %14.2f\n", t, p, r, tps, (u + s) * 1e6 / n }' >>"$summary"
        awk -v t=loadgen -v p="$proto" -v r="$round" -v tps="$lg_tps" -v u="$lu" -v s="$ls" -v n="$lg_tx" \
            'BEGIN { printf "%-8s %-9s %5s %12.0f %14.2f\n", t, p, r, tps, (u + s) * 1e6 / n }' >>"$summary"
    done
done
cat "$summary"
