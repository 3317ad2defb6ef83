#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for trying hydra/launcher=slurm and for the `slurm` tests.
#
#   scripts/slurm_cluster.sh up      (make slurm)       install, configure, start, wait until the node is idle
#   scripts/slurm_cluster.sh down    (make slurm-down)  stop exactly the daemons `up` started
#   scripts/slurm_cluster.sh status                     say whether a cluster answers, and whose it is
#
# Needs root on Debian or Ubuntu and no systemd: slurm-wlm and munge come from apt when missing, and the
# daemons (munged, slurmctld, slurmd) are started by hand, each with a PID file under $STATE/run, which is
# how `down` knows what it started. Running `up` again changes nothing when the cluster is already up.
# A slurm.conf that trainlab did not write (a real cluster's node) is never touched.
set -euo pipefail

STATE=${TRAINLAB_SLURM_STATE:-/var/lib/trainlab-slurm}  # spool, state, logs and PID files of this cluster
CONF=/etc/slurm/slurm.conf                              # where sbatch, squeue and submitit's calls look
MARK="# Written by trainlab's scripts/slurm_cluster.sh"  # first line of a slurm.conf this script owns
PARTITION=debug
REQUEUE_DELAY_S=5   # cred_expire: how long SLURM holds a requeued job (120 s by default) before it may start again
UP_TIMEOUT_S=120

fail() {
    echo "Error: $*" >&2
    exit 2
}

cluster_answers() { command -v sinfo >/dev/null && timeout 10 sinfo -h >/dev/null 2>&1; }

node_state() { timeout 10 sinfo -h -N -o %T 2>/dev/null | head -n1; }

# The PID recorded in $1, when that process is still alive and runs the program $2.
live_pid() {
    local file=$STATE/run/$1.pid pid
    [[ -s $file ]] || return 1
    pid=$(<"$file")
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]] && echo "$pid"
}

install_packages() {
    local missing=()
    command -v munged >/dev/null || missing+=(munge)
    command -v slurmctld >/dev/null || missing+=(slurmctld)
    command -v slurmd >/dev/null || missing+=(slurmd)
    command -v sbatch >/dev/null || missing+=(slurm-client)
    ((${#missing[@]})) || return 0
    command -v apt-get >/dev/null || fail "SLURM is not installed and apt-get is missing; install slurm-wlm and munge with this system's package manager, then run make slurm again."
    echo "Installing slurm-wlm and munge with apt-get (about a minute)..."
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
}

trainlab_config() { [[ -f $CONF && $(head -n1 "$CONF") == "$MARK"* ]]; }

write_config() {
    if [[ -f $CONF ]] && ! trainlab_config; then
        fail "$CONF exists and was not written by trainlab; this machine belongs to another SLURM setup, so make slurm leaves it alone (point hydra/launcher=slurm at that cluster instead, see docs/slurm.md)."
    fi
    # slurmd -C prints this machine as slurm.conf describes a node: name, CPUs, sockets, cores, memory.
    local node
    node=$(slurmd -C | head -n1)
    mkdir -p "$(dirname "$CONF")" "$STATE"/{run,log,ctld,slurmd}
    cat >"$CONF.new" <<EOF
$MARK for a single-node test cluster; scripts/slurm_cluster.sh down stops it.
ClusterName=trainlab
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# A requeued job (time limit reached) may start again after this many seconds instead of 120.
AuthInfo=cred_expire=$REQUEUE_DELAY_S
# No cgroups without systemd: processes are tracked through /proc, and tasks are not bound to cores.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# Look for jobs to start every 2 s (60 s by default), so that a requeued job starts as soon as it may.
SchedulerParameters=sched_interval=2,bf_interval=2
# No accounting database: scontrol shows jobs for MinJobAge seconds after they end, sacct shows none.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=600
MpiDefault=none
ReturnToService=2
KillWait=10
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$CONF.new" "$CONF"
}

start_munge() {
    live_pid munged munged >/dev/null && return 0
    # A munged that the package's own service started: use it, and leave it to whoever started it.
    munge --no-input 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
    [[ -s /etc/munge/munge.key ]] || mungekey --create --keyfile=/etc/munge/munge.key
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    chown munge:munge /etc/munge/munge.key "$STATE/run" 2>/dev/null || true
    chmod 0755 "$STATE/run"
    # munged drops to the munge user itself when started as root; --force lets it replace a stale socket.
    setsid runuser -u munge -- munged --force --pid-file="$STATE/run/munged.pid" </dev/null &>/dev/null 9>&-
}

start_slurm() {
    # Each daemon in a session of its own, holding neither the lock (fd 9) nor the caller's pipes: a caller that
    # reads the output of make slurm would otherwise wait for the daemons to end.
    live_pid slurmctld slurmctld >/dev/null || setsid slurmctld -i </dev/null &>/dev/null 9>&- # -i: no earlier state
    live_pid slurmd slurmd >/dev/null || setsid slurmd </dev/null &>/dev/null 9>&-
}

wait_until_idle() {
    local deadline=$((SECONDS + UP_TIMEOUT_S)) state
    while ((SECONDS < deadline)); do
        state=$(node_state || true)
        case $state in
        idle | mixed | allocated) return 0 ;;
        down* | drain* | fail*) scontrol update nodename="$(hostname -s)" state=resume 2>/dev/null || true ;;
        esac
        sleep 1
    done
    fail "the SLURM node is not idle after ${UP_TIMEOUT_S} s (state: ${state:-no answer}); see $STATE/log/slurmctld.log and slurmd.log."
}

up() {
    [[ $(id -u) == 0 ]] || fail "make slurm starts SLURM's daemons and needs root; run it as root (sudo make slurm)."
    exec 9>"/tmp/trainlab-slurm.lock"
    flock 9 # two `up`s at once: the second waits, then finds the cluster up
    if ! trainlab_config && cluster_answers; then
        echo "A SLURM cluster already answers here (sinfo); make slurm leaves it as it is."
        return 0
    fi
    install_packages
    write_config
    start_munge
    start_slurm
    wait_until_idle
    echo "SLURM is up: partition $PARTITION, node $(hostname -s), $(sinfo -h -o %c) CPUs; stop it with make slurm-down."
}

down() {
    local stopped=() name pid
    for name in slurmd slurmctld munged; do
        if pid=$(live_pid "$name" "$name"); then
            kill "$pid"
            for _ in $(seq 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.2
            done
            stopped+=("$name")
        fi
        rm -f "$STATE/run/$name.pid"
    done
    if ((${#stopped[@]})); then
        echo "Stopped ${stopped[*]}."
    else
        echo "No SLURM daemon of make slurm's is running."
    fi
}

status() {
    if live_pid slurmctld slurmctld >/dev/null; then
        echo "make slurm's cluster is up: $(sinfo -h -N -o '%N %T %c CPUs' 2>/dev/null || echo 'no answer yet')"
    elif cluster_answers; then
        echo "A SLURM cluster answers here, not one of make slurm's."
    else
        echo "No SLURM cluster answers here; start one with make slurm."
        return 1
    fi
}

case ${1:-} in
up | down | status) "$1" ;;
*) fail "usage: scripts/slurm_cluster.sh up|down|status" ;;
esac
