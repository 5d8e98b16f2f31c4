#!/usr/bin/env bash
# A real multi-host run on this one machine: N network namespaces as hosts, each with its own
# address 10.77.0.(K+1)/24, joined by a bridge; Open MPI between them over TCP only.
#
#   cluster/local-hosts.sh up N                          # as root: create hosts 0..N-1
#   cluster/local-hosts.sh run N CONFIG [ARGUMENTS...]   # disttrain train CONFIG on N hosts x 1 rank
#   cluster/local-hosts.sh down N                        # remove them again
#
# The machine's own network namespace is left alone: the bridge lives in a namespace of its own
# (dthost-switch), host K in namespace dthostK (veth pair to the bridge), and mpirun runs in host
# 0's namespace. In place of ssh, Open MPI starts each other host's daemon through an agent that
# enters that host's namespace (`ip netns exec`). Ranks talk over TCP on 10.77.0.0/24 only (no
# shared memory, no loopback between hosts), as across a cluster's network.
# DISTTRAIN names the binary (default .build/release/disttrain).
set -euo pipefail

usage() { sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 64; }
[ $# -ge 2 ] || usage
action="$1"
hosts="$2"
shift 2
case "$hosts" in ''|*[!0-9]*) usage ;; esac
[ "$hosts" -ge 1 ] && [ "$hosts" -le 200 ] || usage
switch=dthost-switch
address() { echo "10.77.0.$(($1 + 1))"; }

down() {
    for ((host = 0; host < hosts; host++)); do
        ip netns del "dthost$host" 2>/dev/null || true
    done
    ip netns del "$switch" 2>/dev/null || true
}

up() {
    down
    ip netns add "$switch"
    ip -n "$switch" link add bridge0 type bridge
    ip -n "$switch" link set bridge0 up
    for ((host = 0; host < hosts; host++)); do
        ip netns add "dthost$host"
        ip -n "$switch" link add "port$host" type veth peer name eth0 netns "dthost$host"
        ip -n "$switch" link set "port$host" master bridge0 up
        ip -n "dthost$host" addr add "$(address "$host")/24" dev eth0
        ip -n "dthost$host" link set eth0 up
        ip -n "dthost$host" link set lo up
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
    cat >"$workspace/agent" <<'AGENT'
#!/bin/sh
# Called by mpirun as `agent [options] HOST COMMAND...`: run COMMAND in HOST's namespace.
while [ $# -gt 0 ]; do case "$1" in -*) shift ;; *) break ;; esac; done
host="$1"
shift
exec ip netns exec "dthost$((${host##*.} - 1))" /bin/sh -c "$*"
AGENT
    chmod +x "$workspace/agent"
    if [ "$(id -u)" = 0 ]; then
        export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    fi
    ip netns exec dthost0 mpirun --host "$hostlist" -n "$hosts" --bind-to none \
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
