#!/usr/bin/env bash
# Rehearse a multi-host run on this one machine.
#
#   cluster/local-multihost.sh [-H hosts] [-s slots] [disttrain arguments... | -- command...]
#
# Open MPI is given a hostfile of pretend hosts (host-0 ... host-{H-1}, S slots each) and, in
# place of ssh, an agent that starts each host's daemon here. Every rank talks to every other over
# TCP (loopback), as across a cluster's network (shared memory is off: the pretend hosts' segments
# would collide), and each rank sees its own local rank and local size. Nothing is bound to
# cores: all pretend hosts share this machine's cores.
#
# Defaults: 2 hosts x 1 slot, `disttrain cluster/fashion-mnist.json`. DISTTRAIN names the binary
# (default .build/release/disttrain). After `--`, any command runs instead, e.g. a test class:
#   cluster/local-multihost.sh -H 2 -s 1 -- .build/release/disttrainPackageTests.xctest DistTrainTests.MultiRankCommunicatorTests
set -euo pipefail

hosts=2
slots=1
while getopts "H:s:h" option; do
    case "$option" in
        H) hosts="$OPTARG" ;;
        s) slots="$OPTARG" ;;
        h) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) exit 64 ;;
    esac
done
# getopts consumes a `--`; it is the argument just before the first one left.
separator="${*:OPTIND-1:1}"
shift $((OPTIND - 1))

if [ "$separator" = "--" ]; then
    command=("$@")
else
    command=("${DISTTRAIN:-.build/release/disttrain}" "${@:-cluster/fashion-mnist.json}")
fi
if [ "${#command[@]}" -eq 0 ]; then
    echo "local-multihost.sh: no command after --" >&2
    exit 64
fi

workspace="$(mktemp -d)"
trap 'rm -rf "$workspace"' EXIT
for ((host = 0; host < hosts; host++)); do
    echo "host-$host slots=$slots"
done >"$workspace/hostfile"
cat >"$workspace/agent" <<'AGENT'
#!/bin/sh
# Called by mpirun as `agent [options] HOST COMMAND...`: ignore the host, run the command here.
while [ $# -gt 0 ]; do case "$1" in -*) shift ;; *) break ;; esac; done
shift
exec /bin/sh -c "$*"
AGENT
chmod +x "$workspace/agent"

if [ "$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
exec mpirun --hostfile "$workspace/hostfile" -n $((hosts * slots)) --bind-to none \
    --mca plm_rsh_agent "$workspace/agent" \
    --mca btl tcp,self --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo \
    "${command[@]}"
