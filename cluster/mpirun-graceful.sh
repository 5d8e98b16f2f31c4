#!/usr/bin/env bash
# mpirun for a disttrain job that stops cleanly on SIGTERM, SIGINT (Ctrl-C), SIGHUP or SIGUSR1.
#
#   cluster/mpirun-graceful.sh MPIRUN-ARGUMENTS...
#   e.g. cluster/mpirun-graceful.sh -n 4 .build/release/disttrain cluster/fashion-mnist.json
#
# Open MPI 4.1's mpirun answers its own SIGTERM or SIGINT with an abort: it signals the ranks,
# SIGKILLs them 1 s later (odls_base_sigkill_timeout) and exits 1 whatever they did. SIGUSR1 it
# forwards to every rank, on every host, and then exits with the ranks' status. So this wrapper
# runs mpirun in a process group of its own (a terminal's Ctrl-C reaches only the wrapper) and
# turns each of those signals into one SIGUSR1 to mpirun: every rank finishes its step, rank 0
# writes a checkpoint, and the job exits 0. Run the same command again to resume.
#
# Exit status: mpirun's. 0: the run finished, or stopped after writing a checkpoint.
set -uo pipefail
# Job control gives the background mpirun its own process group.
set -m

# mpirun reads standard input for rank 0; a background group reading a terminal would be stopped.
mpirun "$@" </dev/null &
launcher=$!
trap 'kill -USR1 "$launcher" 2>/dev/null' TERM INT HUP USR1
while true; do
    wait "$launcher"
    status=$?
    # A trapped signal ends `wait` early (status > 128) while mpirun still runs.
    kill -0 "$launcher" 2>/dev/null || break
done
exit "$status"
