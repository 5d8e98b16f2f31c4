#!/usr/bin/env bash
# A real multi-host run on this one machine: N network namespaces as hosts, each with its own
# address 10.77.0.(K+1)/24, joined by a bridge; Open MPI between them over TCP only.
#
#   cluster/local-hosts.sh up N                          # as root: create hosts 0..N-1
#   cluster/local-hosts.sh run N CONFIG [ARGUMENTS...]   # disttrain train CONFIG on N hosts x 1 rank
#   cluster/local-hosts.sh down N                        # remove them again
#
# The machine's own network namespace is left alone: the bridge lives in a namespace of its own
# (dthost-switch by default), host K in namespace dthostK (veth pair to the bridge), and mpirun runs in host
# 0's namespace. In place of ssh, Open MPI starts each other host's daemon through an agent that
# enters that host's namespace (`ip netns exec`). Ranks talk over TCP on 10.77.0.0/24 only (no
# shared memory, no loopback between hosts), as across a cluster's network.
# DISTTRAIN names the binary (default .build/release/disttrain). NAMESPACES names the namespaces
# (default dthost: dthost-switch, dthost0, ...); runs that may overlap on one machine (test suites
# of several checkouts) each need their own, or one's `up`, which starts with `down`, removes the
# other's hosts under its running mpirun.
set -euo pipefail

usage() { sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 64; }
[ $# -ge 2 ] || usage
action="$1"
hosts="$2"
shift 2
case "$hosts" in ''|*[!0-9]*) usage ;; esac
[ "$hosts" -ge 1 ] && [ "$hosts" -le 200 ] || usage
prefix="${NAMESPACES:-dthost}"
case "$prefix" in ''|*[!A-Za-z0-9_-]*) echo "local-hosts.sh: NAMESPACES must be letters, digits, '_' or '-', got '$prefix'" >&2; exit 64 ;; esac
switch="$prefix-switch"
address() { echo "10.77.0.$(($1 + 1))"; }

down() {
    for ((host = 0; host < hosts; host++)); do
        ip netns del "$prefix$host" 2>/dev/null || true
    done
    ip netns del "$switch" 2>/dev/null || true
}

up() {
    down
    ip netns add "$switch"
    ip -n "$switch" link add bridge0 type bridge
    ip -n "$switch" link set bridge0 up
    for ((host = 0; host < hosts; host++)); do
        ip netns add "$prefix$host"
        ip -n "$switch" link add "port$host" type veth peer name eth0 netns "$prefix$host"
        ip -n "$switch" link set "port$host" master bridge0 up
        ip -n "$prefix$host" addr add "$(address "$host")/24" dev eth0
        ip -n "$prefix$host" link set eth0 up
        ip -n "$prefix$host" link set lo up
    done
    wait_until_up
}

# `link set up` returns before the kernel reports the veth's carrier (linkwatch does that
# asynchronously) and before the bridge port forwards; an mpirun started in that window found no
# usable interface ("opal_ifinit: unable to find network interfaces"). So wait, at most 10 s,
# until every host's eth0 is operationally up with its address, its loopback is up, and its
# bridge port forwards.
wait_until_up() {
    local host deadline=$((SECONDS + 10))
    for ((host = 0; host < hosts; host++)); do
        until ip -n "$prefix$host" -o addr show dev eth0 | grep -q "inet $(address "$host")/24 " \
            && ip -n "$prefix$host" -o link show dev eth0 | grep -q " state UP " \
            && ip -n "$prefix$host" -o link show dev lo | grep -q "[<,]UP[,>]" \
            && ip -n "$switch" -d -o link show dev "port$host" | grep -q "bridge_slave state forwarding "; do
            if ((SECONDS >= deadline)); then
                echo "local-hosts.sh: host $host (namespace $prefix$host) is not up with $(address "$host") after 10 s:" >&2
                ip -n "$prefix$host" -o addr show >&2
                exit 1
            fi
            sleep 0.1
        done
    done
}

run() {
    [ $# -ge 1 ] || usage
    local workspace hostlist=""
    workspace="$(mktemp -d)"
    trap 'rm -rf "$workspace"' RETURN
    for ((host = 0; host < hosts; host++)); do
        hostlist="$hostlist${hostlist:+,}$(address "$host")"
    done
    { printf '#!/bin/sh\nprefix=%s\n' "$prefix"; cat <<'AGENT'; } >"$workspace/agent"
# Called by mpirun as `agent [options] HOST COMMAND...`: run COMMAND in HOST's namespace.
while [ $# -gt 0 ]; do case "$1" in -*) shift ;; *) break ;; esac; done
host="$1"
shift
exec ip netns exec "$prefix$((${host##*.} - 1))" /bin/sh -c "$*"
AGENT
    chmod +x "$workspace/agent"
    if [ "$(id -u)" = 0 ]; then
        export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    fi
    ip netns exec "${prefix}0" mpirun --host "$hostlist" -n "$hosts" --bind-to none \
        --mca plm_rsh_agent "$workspace/agent" \
        --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24 \
        "${DISTTRAIN:-.build/release/disttrain}" train "$@"
}

case "$action" in
    up) up ;;
    down) down ;;
    run) run "$@" ;;
    *) usage ;;
esac
