#!/usr/bin/env bash
# scripts/slurm_local.sh start|stop|status|restart
#
# A one-node SLURM cluster on this machine (Debian bookworm, SLURM 22.05, run as root), to try
# and test `latentexp train -m ... hydra/launcher=slurm` against a real scheduler.
#
#   start    apt-get installs slurm-wlm, munge, slurmdbd and mariadb-server if missing, writes
#            $SLURM_CONF for this host (its name, CPUs, sockets/cores/threads and memory as
#            `slurmd -C` sees them, less 5 %; one partition `debug`, the default), creates the
#            munge key if absent, starts munged, mariadbd and slurmdbd (accounting), slurmctld and
#            slurmd as daemons and waits (at most $SLURM_LOCAL_WAIT s, default 60) until `sinfo`
#            shows the node idle. Already up: says so and succeeds. A daemon that fails: the end
#            of its log and its path, exit 1.
#   stop     cancels every job, `scontrol shutdown`s slurmctld and slurmd, stops the slurmdbd,
#            mariadbd and munged it started. Already down: succeeds.
#   status   the daemons, `sinfo` and `squeue`; exit 0 when the node is up (idle, mixed or
#            allocated), 3 otherwise.
#
# What the cluster is, and why (found by trying it in a gVisor container without systemd):
#   - no cgroups: ProctrackType=proctrack/linuxproc, TaskPlugin=task/none,
#     JobAcctGatherType=jobacct_gather/none, so nothing needs a cgroup hierarchy or cgroup.conf;
#     a job's memory is booked (CR_CPU_Memory, DefMemPerCPU) but not enforced.
#   - accounting through slurmdbd and a local MariaDB (socket only, no network), because
#     submitit learns a job's end from `sacct`: without it a job that dies before writing its
#     result (cancelled, killed, node lost) stays UNKNOWN and the sweep command waits forever.
#     SLURM_LOCAL_ACCOUNTING=0 leaves accounting out (no sacct; fine for plain sbatch).
#     Every job's end is also one line in $SLURM_LOCAL_LOG/jobcomp.log (jobcomp/filetxt).
#   - SlurmUser=root, state and spool under $SLURM_LOCAL_STATE, logs and pid files under
#     $SLURM_LOCAL_LOG and $SLURM_LOCAL_RUN. The state is kept across stop/start (`stop`
#     cancels every job first), so job ids keep growing and never meet an old id in sacct.
#   - the node is reached on 127.0.0.1 whatever the hostname resolves to.
#   - a job past its --time gets SIGTERM, then SIGKILL KillWait=5 s later (OverTimeLimit=0);
#     slurmctld looks at time limits every 30 s, so it ends up to 30 s after its limit.
#   - MinJobAge=600: an ended job stays visible to `scontrol show job` for 10 minutes.
#   - `scontrol requeue ID` works; Slurm then holds the job PENDING (Reason=BeginTime) for
#     about 2 minutes; `scontrol update jobid=ID StartTime=now`, once it is PENDING, lets it
#     start at once. The restarted script sees SLURM_RESTART_COUNT=1.
# Environment knobs: SLURM_CONF (default /etc/slurm/slurm.conf, which the Slurm commands read
# by default; a slurm.conf that this script did not write is never overwritten),
# SLURM_LOCAL_PARTITION (debug), SLURM_LOCAL_WAIT (60), SLURM_LOCAL_ACCOUNTING (1),
# SLURM_LOCAL_STATE (/var/lib/slurm-local), SLURM_LOCAL_LOG (/var/log/slurm-local),
# SLURM_LOCAL_RUN (/run/slurm-local). Give `stop` and `status` the same values as `start`.
set -euo pipefail

SLURM_CONF=${SLURM_CONF:-/etc/slurm/slurm.conf}
export SLURM_CONF
PARTITION=${SLURM_LOCAL_PARTITION:-debug}
WAIT_S=${SLURM_LOCAL_WAIT:-60}
ACCOUNTING=${SLURM_LOCAL_ACCOUNTING:-1}
STATE=${SLURM_LOCAL_STATE:-/var/lib/slurm-local}
LOGDIR=${SLURM_LOCAL_LOG:-/var/log/slurm-local}
RUNDIR=${SLURM_LOCAL_RUN:-/run/slurm-local}
MARKER="# written by latentexp scripts/slurm_local.sh"
MUNGE_KEY=/etc/munge/munge.key
MUNGE_SOCKET=/run/munge/munge.socket.2
MUNGE_PID=$RUNDIR/munged.pid
CTLD_PID=$RUNDIR/slurmctld.pid
SLURMD_PID=$RUNDIR/slurmd.pid
CTLD_LOG=$LOGDIR/slurmctld.log
SLURMD_LOG=$LOGDIR/slurmd.log
MUNGE_LOG=$LOGDIR/munged.log
DBD_CONF=$(dirname "$SLURM_CONF")/slurmdbd.conf
DBD_PID=$RUNDIR/slurmdbd.pid
DBD_LOG=$LOGDIR/slurmdbd.log
DB_PID=/run/mysqld/mysqld.pid
DB_LOG=$LOGDIR/mariadb.log
DB_OURS=$RUNDIR/mariadb.started-here
DB_NAME=slurm_acct_db

say() { echo "slurm_local: $*"; }
die() { echo "slurm_local: error: $*" >&2; exit 1; }

tail_log() {  # the last lines of a daemon's log, to stderr
    if [[ -s $1 ]]; then
        echo "--- last lines of $1:" >&2
        tail -n 15 "$1" >&2
    else
        echo "--- $1 is empty or missing" >&2
    fi
}

pid_alive() {  # pid_alive PIDFILE NAME: the pid in PIDFILE is a live process called NAME
    local pid
    [[ -r $1 ]] || return 1
    pid=$(cat "$1" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$2"* ]]
}

node_name() { hostname -s; }

node_state() {  # the node's state as sinfo prints it (idle, idle*, down*, mix, alloc, ...), or nothing
    timeout 10 sinfo -h -N -n "$(node_name)" -o '%T' 2>/dev/null | head -n 1 || true
}

munge_works() { timeout 10 munge -n 2>/dev/null | timeout 10 unmunge >/dev/null 2>&1; }

install_packages() {
    local missing=()
    command -v slurmctld >/dev/null 2>&1 || missing+=(slurmctld)
    command -v slurmd >/dev/null 2>&1 || missing+=(slurmd)
    command -v sbatch >/dev/null 2>&1 || missing+=(slurm-client)
    command -v munged >/dev/null 2>&1 || missing+=(munge)
    if [[ $ACCOUNTING == 1 ]]; then
        command -v slurmdbd >/dev/null 2>&1 || missing+=(slurmdbd)
        command -v mariadbd >/dev/null 2>&1 || missing+=(mariadb-server)
    fi
    if ((${#missing[@]})); then
        [[ $EUID -eq 0 ]] || die "must run as root to install ${missing[*]}"
        say "installing ${missing[*]}; apt log: $LOGDIR/apt.log"
        mkdir -p "$LOGDIR"
        # -o Dpkg::Options: keep our slurm.conf if a package ships one; the daemons' services are
        # not started here (policy-rc.d in containers, and we start them ourselves)
        if ! { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
                -o Dpkg::Options::=--force-confold "${missing[@]}" >"$LOGDIR/apt.log" 2>&1 ||
               { DEBIAN_FRONTEND=noninteractive apt-get update >>"$LOGDIR/apt.log" 2>&1 &&
                 DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
                   -o Dpkg::Options::=--force-confold "${missing[@]}" >>"$LOGDIR/apt.log" 2>&1; }; }; then
            tail_log "$LOGDIR/apt.log"
            die "apt-get install ${missing[*]} failed; see $LOGDIR/apt.log"
        fi
    fi
}

write_conf() {
    local host cpus sockets cores threads mem defmem hw
    if [[ -e $SLURM_CONF ]] && ! grep -qF "$MARKER" "$SLURM_CONF"; then
        die "$SLURM_CONF exists and was not written by this script; move it away or set SLURM_CONF"
    fi
    host=$(node_name)
    hw=$(slurmd -C 2>/dev/null | head -n 1) || die "slurmd -C failed: cannot read this host's CPUs and memory"
    cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
    sockets=$(sed -n 's/.* SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$hw")
    cores=$(sed -n 's/.* CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$hw")
    threads=$(sed -n 's/.* ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$hw")
    mem=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
    [[ -n $cpus && -n $sockets && -n $cores && -n $threads && -n $mem ]] ||
        die "cannot parse \`slurmd -C\`: $hw"
    # leave the system 5 % (at least 256 MB) so that the node never drains for "Low RealMemory"
    mem=$((mem - (mem / 20 > 256 ? mem / 20 : 256)))
    ((mem > 0)) || die "too little memory for a node: $hw"
    defmem=$((mem / cpus))
    mkdir -p "$(dirname "$SLURM_CONF")"
    cat >"$SLURM_CONF.tmp" <<EOF
$MARKER on $(date -u +%Y-%m-%dT%H:%M:%SZ): a one-node cluster on $host.
# Rewritten by every \`scripts/slurm_local.sh start\`; edit the script instead.
ClusterName=latentexp-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
SwitchType=switch/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
$(if [[ $ACCOUNTING == 1 ]]; then
    echo "AccountingStorageType=accounting_storage/slurmdbd"
    echo "AccountingStorageHost=localhost"
else
    echo "AccountingStorageType=accounting_storage/none"
fi)
JobCompType=jobcomp/filetxt
JobCompLoc=$LOGDIR/jobcomp.log
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=$defmem
SchedulerType=sched/backfill
ReturnToService=2
JobRequeue=1
MinJobAge=600
KillWait=5
OverTimeLimit=0
MessageTimeout=20
InactiveLimit=0
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$CTLD_LOG
SlurmdLogFile=$SLURMD_LOG
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus Boards=1 SocketsPerBoard=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$SLURM_CONF.tmp" "$SLURM_CONF"
    if [[ $ACCOUNTING == 1 ]]; then
        local pass
        if [[ -e $DBD_CONF ]] && ! grep -qF "$MARKER" "$DBD_CONF"; then
            die "$DBD_CONF exists and was not written by this script; move it away or set SLURM_LOCAL_ACCOUNTING=0"
        fi
        pass=$(sed -n 's/^StoragePass=//p' "$DBD_CONF" 2>/dev/null || true)
        [[ -n $pass ]] || pass=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
        (umask 077; cat >"$DBD_CONF.tmp" <<DBDEOF
$MARKER: slurmdbd for the one-node cluster on $host.
DbdHost=localhost
SlurmUser=root
AuthType=auth/munge
PidFile=$DBD_PID
LogFile=$DBD_LOG
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$pass
StorageLoc=$DB_NAME
DBDEOF
)
        mv "$DBD_CONF.tmp" "$DBD_CONF"
    fi
    say "wrote $SLURM_CONF ($host: $cpus CPUs, ${mem} MB, partition $PARTITION)"
}

start_munge() {
    if munge_works; then
        say "munged is already running"
        return
    fi
    if [[ ! -s $MUNGE_KEY ]]; then
        say "creating $MUNGE_KEY"
        mkdir -p /etc/munge
        if command -v mungekey >/dev/null 2>&1; then
            mungekey --create --keyfile="$MUNGE_KEY"
        else
            dd if=/dev/urandom of="$MUNGE_KEY" bs=1 count=1024 status=none
        fi
    fi
    chown munge:munge /etc/munge "$MUNGE_KEY"
    chmod 700 /etc/munge
    chmod 400 "$MUNGE_KEY"
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge
    chmod 755 /run/munge
    touch "$MUNGE_LOG" && chown munge:munge "$MUNGE_LOG"
    rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
    if ! runuser -u munge -- munged --log-file="$MUNGE_LOG" --pid-file=/run/munge/munged.pid; then
        tail_log "$MUNGE_LOG"
        die "munged did not start; see $MUNGE_LOG"
    fi
    cp /run/munge/munged.pid "$MUNGE_PID" 2>/dev/null || true
    for _ in $(seq 50); do munge_works && break; sleep 0.2; done
    munge_works || { tail_log "$MUNGE_LOG"; die "munged started but \`munge -n | unmunge\` fails; see $MUNGE_LOG"; }
    say "munged started"
}

db_works() { timeout 10 mariadb-admin ping >/dev/null 2>&1; }

start_mariadb() {
    local pass
    if db_works; then
        say "mariadbd is already running"
    else
        mkdir -p /run/mysqld
        chown mysql:mysql /run/mysqld
        touch "$DB_LOG" && chown mysql:mysql "$DB_LOG"
        if [[ ! -d /var/lib/mysql/mysql ]]; then
            mariadb-install-db --user=mysql --datadir=/var/lib/mysql >>"$DB_LOG" 2>&1 ||
                { tail_log "$DB_LOG"; die "mariadb-install-db failed; see $DB_LOG"; }
        fi
        # socket only (/run/mysqld/mysqld.sock), a small buffer pool: the database holds a few jobs
        (cd / && exec setsid mariadbd --user=mysql --skip-networking --innodb-buffer-pool-size=64M \
            --pid-file="$DB_PID" --log-error="$DB_LOG" </dev/null >/dev/null 2>&1 &)
        for _ in $(seq 60); do db_works && break; sleep 0.5; done
        db_works || { tail_log "$DB_LOG"; die "mariadbd did not start; see $DB_LOG"; }
        touch "$DB_OURS"
        say "mariadbd started (pid $(cat "$DB_PID" 2>/dev/null || echo '?'))"
    fi
    pass=$(sed -n 's/^StoragePass=//p' "$DBD_CONF")
    mariadb -e "CREATE DATABASE IF NOT EXISTS $DB_NAME;
        CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$pass';
        ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$pass';
        GRANT ALL ON $DB_NAME.* TO 'slurm'@'localhost';" >>"$DB_LOG" 2>&1 ||
        { tail_log "$DB_LOG"; die "cannot create the accounting database $DB_NAME (as root through the socket); see $DB_LOG"; }
}

start_dbd() {
    if pid_alive "$DBD_PID" slurmdbd; then
        say "slurmdbd is already running (pid $(cat "$DBD_PID"))"
        return
    fi
    if ! slurmdbd; then
        tail_log "$DBD_LOG"
        die "slurmdbd did not start; see $DBD_LOG"
    fi
    # slurmdbd answers once it has created its tables (the first time: a few seconds)
    for _ in $(seq 120); do
        timeout 10 sacctmgr -n -P show cluster >/dev/null 2>&1 && break
        pid_alive "$DBD_PID" slurmdbd || sleep 0.5
        pid_alive "$DBD_PID" slurmdbd || { tail_log "$DBD_LOG"; die "slurmdbd exited; see $DBD_LOG"; }
        sleep 0.5
    done
    timeout 10 sacctmgr -n -P show cluster >/dev/null 2>&1 ||
        { tail_log "$DBD_LOG"; die "slurmdbd does not answer \`sacctmgr show cluster\`; see $DBD_LOG"; }
    if ! timeout 10 sacctmgr -n -P show cluster format=cluster | grep -qx latentexp-local; then
        timeout 20 sacctmgr -i add cluster latentexp-local >/dev/null ||
            { tail_log "$DBD_LOG"; die "sacctmgr add cluster latentexp-local failed; see $DBD_LOG"; }
    fi
    say "slurmdbd started (pid $(cat "$DBD_PID"))"
}

# launch NAME PIDFILE LOG DIR: start daemon NAME (`NAME -f $SLURM_CONF`) unless it runs; return 1
# when it already ran (nothing to wait for), die with its log's tail when it cannot start
launch() {
    local name=$1 pidfile=$2 log=$3 dir=$4
    if pid_alive "$pidfile" "$name"; then
        say "$name is already running (pid $(cat "$pidfile"))"
        return 1
    fi
    mkdir -p "$dir"
    if ! "$name" -f "$SLURM_CONF"; then
        tail_log "$log"
        die "$name did not start; see $log"
    fi
}

start_ctld() {
    launch slurmctld "$CTLD_PID" "$CTLD_LOG" "$STATE/ctld" || return 0
    for _ in $(seq 100); do
        timeout 5 scontrol ping 2>/dev/null | grep -q 'is UP' && break
        pid_alive "$CTLD_PID" slurmctld || sleep 0.5
        pid_alive "$CTLD_PID" slurmctld || { tail_log "$CTLD_LOG"; die "slurmctld exited; see $CTLD_LOG"; }
        sleep 0.2
    done
    timeout 5 scontrol ping 2>/dev/null | grep -q 'is UP' ||
        { tail_log "$CTLD_LOG"; die "slurmctld does not answer \`scontrol ping\`; see $CTLD_LOG"; }
    say "slurmctld started (pid $(cat "$CTLD_PID"))"
}

start_slurmd() {
    launch slurmd "$SLURMD_PID" "$SLURMD_LOG" "$STATE/d" || return 0
    sleep 0.5
    pid_alive "$SLURMD_PID" slurmd || { tail_log "$SLURMD_LOG"; die "slurmd exited; see $SLURMD_LOG"; }
    say "slurmd started (pid $(cat "$SLURMD_PID"))"
}

wait_idle() {
    local t0 state
    t0=$SECONDS
    while :; do
        state=$(node_state)
        case $state in
            idle | mixed | allocated | mix | alloc)
                say "node $(node_name) is $state ($((SECONDS - t0)) s after the daemons started)"
                return ;;
        esac
        if ! pid_alive "$CTLD_PID" slurmctld; then tail_log "$CTLD_LOG"; die "slurmctld exited; see $CTLD_LOG"; fi
        if ! pid_alive "$SLURMD_PID" slurmd; then tail_log "$SLURMD_LOG"; die "slurmd exited; see $SLURMD_LOG"; fi
        if ((SECONDS - t0 >= WAIT_S)); then
            timeout 10 scontrol show node "$(node_name)" >&2 || true
            tail_log "$CTLD_LOG"
            tail_log "$SLURMD_LOG"
            die "node $(node_name) is '${state:-not listed}' after ${WAIT_S} s, not idle; see $CTLD_LOG and $SLURMD_LOG"
        fi
        sleep 1
    done
}

cmd_start() {
    [[ $EUID -eq 0 ]] || die "start must run as root"
    mkdir -p "$LOGDIR" "$RUNDIR" "$STATE"
    if pid_alive "$CTLD_PID" slurmctld && pid_alive "$SLURMD_PID" slurmd && munge_works &&
        { [[ $ACCOUNTING != 1 ]] || pid_alive "$DBD_PID" slurmdbd; }; then
        case $(node_state) in
            idle | mixed | allocated | mix | alloc)
                say "already up: node $(node_name) is $(node_state)"
                return ;;
        esac
    fi
    install_packages
    # the config is only rewritten while slurmctld and slurmd are down: daemons read it at start
    if ! pid_alive "$CTLD_PID" slurmctld && ! pid_alive "$SLURMD_PID" slurmd; then
        write_conf
    elif [[ $ACCOUNTING == 1 && ! -e $DBD_CONF ]]; then
        die "slurmctld or slurmd runs without accounting; run \`$0 stop\` first"
    fi
    start_munge
    if [[ $ACCOUNTING == 1 ]]; then
        start_mariadb
        start_dbd
    fi
    start_ctld
    start_slurmd
    wait_idle
}

stop_pid() {  # stop_pid PIDFILE NAME: TERM, wait up to 15 s, then KILL
    local pid
    pid_alive "$1" "$2" || { rm -f "$1"; return 0; }
    pid=$(cat "$1")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 75); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        say "$2 (pid $pid) ignored SIGTERM for 15 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$1"
}

cmd_stop() {
    local jobs
    if pid_alive "$CTLD_PID" slurmctld; then
        jobs=$(timeout 10 squeue -h -o '%A' 2>/dev/null | tr '\n' ' ' || true)
        if [[ -n ${jobs// /} ]]; then
            say "cancelling jobs: $jobs"
            # shellcheck disable=SC2086
            timeout 10 scancel $jobs 2>/dev/null || true
            for _ in $(seq 30); do
                [[ -z $(timeout 10 squeue -h -t R,CG,PD -o '%A' 2>/dev/null || true) ]] && break
                sleep 0.5
            done
        fi
        timeout 20 scontrol shutdown >/dev/null 2>&1 || true
        for _ in $(seq 75); do
            pid_alive "$CTLD_PID" slurmctld || pid_alive "$SLURMD_PID" slurmd || break
            sleep 0.2
        done
    fi
    stop_pid "$SLURMD_PID" slurmd
    stop_pid "$CTLD_PID" slurmctld
    stop_pid "$DBD_PID" slurmdbd
    # only the mariadbd this script started (one of systemd's is left alone)
    if [[ -e $DB_OURS ]]; then
        pid_alive "$DB_PID" mariadbd && stop_pid "$DB_PID" mariadbd
        rm -f "$DB_OURS"
    fi
    # only the munged this script started (another one, e.g. systemd's, is left alone)
    if pid_alive "$MUNGE_PID" munged; then
        stop_pid "$MUNGE_PID" munged
        rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
    fi
    rm -f "$MUNGE_PID"
    say "stopped"
}

cmd_status() {
    local rc=0 d f
    local daemons=("munged:$MUNGE_PID")
    [[ $ACCOUNTING == 1 ]] && daemons+=("mariadbd:$DB_PID" "slurmdbd:$DBD_PID")
    daemons+=("slurmctld:$CTLD_PID" "slurmd:$SLURMD_PID")
    for d in "${daemons[@]}"; do
        f=${d#*:}
        if pid_alive "$f" "${d%%:*}"; then
            say "${d%%:*} running (pid $(cat "$f"))"
        elif [[ ${d%%:*} == munged ]] && munge_works; then
            say "munged running (not started by this script)"
        elif [[ ${d%%:*} == mariadbd ]] && db_works; then
            say "mariadbd running (not started by this script)"
        else
            say "${d%%:*} not running"
            rc=3
        fi
    done
    if ((rc == 0)); then
        timeout 10 sinfo || rc=3
        timeout 10 squeue || true
        case $(node_state) in idle | mixed | allocated | mix | alloc) ;; *) rc=3 ;; esac
    fi
    return $rc
}

case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_stop; cmd_start ;;
    status) cmd_status ;;
    *) echo "usage: $0 start|stop|status|restart" >&2; exit 2 ;;
esac
