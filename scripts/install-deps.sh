#!/usr/bin/env bash
# Installs, when missing, the system packages the integration tests need (PostgreSQL server
# binaries and psql) and, with --bench, those the benchmarks also need (pgbouncer, pgpool2, openssl, perf).
# Idempotent; Debian/Ubuntu with apt-get; run as root (or with sudo available).
# It never leaves the distribution's own PostgreSQL service running: tests start their own
# throwaway servers on free loopback ports.
set -euo pipefail

bench=0
for arg in "$@"; do
    case "$arg" in
        --bench) bench=1 ;;
        -h | --help)
            echo "usage: $0 [--bench]   (--bench also installs pgbouncer, pgpool2, openssl and perf)"
            exit 0
            ;;
        *)
            echo "install-deps: unknown argument: $arg" >&2
            exit 2
            ;;
    esac
done

say() { echo "install-deps: $*"; }

packages=()
if compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    say "PostgreSQL server binaries present ($(compgen -G '/usr/lib/postgresql/*/bin/initdb' | head -n1))"
else
    packages+=(postgresql)
fi
# pgbench ships with the server package on Debian; the client package brings psql.
if command -v psql >/dev/null 2>&1; then
    say "psql present ($(command -v psql))"
else
    packages+=(postgresql-client)
fi
if [ "$bench" = 1 ]; then
    if command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; then
        say "pgbouncer present"
    else
        packages+=(pgbouncer)
    fi
    # The second peer proxy; the connect scenario's certificate; flamegraphs.
    [ -x /usr/sbin/pgpool ] || packages+=(pgpool2)
    command -v openssl >/dev/null 2>&1 || packages+=(openssl)
    command -v perf >/dev/null 2>&1 || packages+=(linux-perf)
fi

if [ "${#packages[@]}" -eq 0 ]; then
    say "nothing to install"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    say "missing: ${packages[*]}; no apt-get here, install them with your package manager" >&2
    exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        say "missing: ${packages[*]}; run this script as root to install them" >&2
        exit 1
    fi
fi

# Keep package scripts from starting services (the distribution's cluster) while installing.
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
    say "adding /usr/sbin/policy-rc.d for the duration of the install (no service starts)"
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${sudo[@]}" chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
fi
cleanup() {
    if [ "$created_policy" = 1 ]; then
        "${sudo[@]}" rm -f /usr/sbin/policy-rc.d
    fi
}
trap cleanup EXIT

say "apt-get update"
"${sudo[@]}" apt-get update
say "apt-get install ${packages[*]}"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}"

# Should a cluster have been started anyway, stop it: it would only hold a port and memory.
if command -v pg_lsclusters >/dev/null 2>&1; then
    pg_lsclusters --no-header 2>/dev/null | while read -r version name _port status _rest; do
        if [ "$status" = online ] || [ "${status#online}" != "$status" ]; then
            say "stopping the distribution's cluster $version/$name"
            "${sudo[@]}" pg_ctlcluster "$version" "$name" stop || true
        fi
    done
fi
say "done"
