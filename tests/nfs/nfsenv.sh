#!/usr/bin/env bash
# tests/nfs/nfsenv.sh - a real NFSv3 server for the NFS target tests: Debian
# nfs-ganesha (VFS FSAL) and rpcbind, inside a network namespace this script
# creates (needs root: `ip netns add`).
#
#   nfsenv.sh start DIR           start everything; writes DIR/env (sourceable)
#   nfsenv.sh stop DIR            stop what start started (by PID), delete the
#                                 namespace; safe to call twice
#   nfsenv.sh kill-server DIR     SIGKILL ganesha (fault tests); rpcbind stays
#   nfsenv.sh restart-server DIR  start ganesha again (same exports, same ports)
#   nfsenv.sh stop-server DIR     SIGSTOP ganesha (a hung server) / cont-server
#   nfsenv.sh cont-server DIR
#
# Layout of DIR: export/ (the served directory, export /export: RW,
# no_root_squash), readonly/ (export /readonly: all clients squashed to
# nobody, owned by root, so writes are refused), ganesha.conf, ganesha.log,
# rpcbind.log, *.pid, recovery/, env.
#
# Why a mount namespace as well: rpcbind keeps its socket, lock and state in
# /run (/run/rpcbind.sock, /run/rpcbind.lock, /run/rpcbind/) whatever network
# namespace it runs in, and a second rpcbind on the machine (the host's, or
# another test run's) would find the lock taken, and ganesha would register
# with the wrong one through the socket. So rpcbind runs under `unshare -m`
# with a private tmpfs on /run, and ganesha joins that mount namespace and the
# network namespace with `nsenter -t <rpcbind pid> -m -n`. The clients (the
# tests, nfs-ls/nfs-cp) only need the network namespace: `ip netns exec NS`.
#
# DIR/env defines HARVBK_TEST_NFS_NETNS, HARVBK_TEST_NFS_URL (nfs://127.0.0.1/export),
# HARVBK_TEST_NFS_EXPORT_DIR (the directory the server serves, for checks from
# the host side), HARVBK_TEST_NFS_RO_URL, HARVBK_TEST_NFS_ENV_DIR and
# HARVBK_TEST_NFS_SCRIPT (this script, for the kill/restart hooks).
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
die() { echo "nfsenv.sh: $*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: nfsenv.sh start|stop|kill-server|restart-server|stop-server|cont-server DIR"
cmd=$1
DIR=$2
mkdir -p "$DIR"
DIR=$(readlink -f "$DIR")

# alive and not a zombie (orphans of this script may never be reaped where
# PID 1 does not reap)
pid_alive() {
    [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
    local st
    st=$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
    [ "$st" != Z ] && [ "$st" != X ] && return 0
    # a zombie leader whose other threads are still exiting (and may still
    # hold files and locks, e.g. ganesha's pid file lock) counts as alive
    [ "$(ls "/proc/$1/task" 2>/dev/null | wc -l)" -gt 1 ]
}
read_pid() { [ -f "$DIR/$1.pid" ] && cat "$DIR/$1.pid" || true; }

# Wait (bounded) until the export answers a directory listing from inside the
# namespace.
wait_export() {
    local ns=$1 i
    for i in $(seq 1 100); do
        if ip netns exec "$ns" timeout 5 nfs-ls nfs://127.0.0.1/export >/dev/null 2>&1; then
            return 0
        fi
        pid_alive "$(read_pid ganesha)" || return 1
        sleep 0.1
    done
    return 1
}

start_ganesha() {
    local ns rp
    ns=$(cat "$DIR/netns")
    rp=$(read_pid rpcbind)
    pid_alive "$rp" || die "rpcbind is not running"
    # nsenter execs ganesha: $! is ganesha's PID
    nsenter -t "$rp" -m -n -- ganesha.nfsd -F -f "$DIR/ganesha.conf" -L "$DIR/ganesha.log" \
        -p "$DIR/ganesha.pidfile" -N NIV_EVENT </dev/null >>"$DIR/ganesha.out" 2>&1 &
    echo $! >"$DIR/ganesha.pid"
    if ! wait_export "$ns"; then
        tail -n 30 "$DIR/ganesha.log" "$DIR/ganesha.out" >&2 2>/dev/null || true
        die "ganesha did not serve the export within 10 s (log: $DIR/ganesha.log)"
    fi
}

# Kill a PID we started, wait for it (bounded), SIGKILL if it lingers.
stop_pid() {
    local pid=$1 i
    pid_alive "$pid" || return 0
    kill -CONT "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
}

do_stop() {
    stop_pid "$(read_pid ganesha)"
    stop_pid "$(read_pid rpcbind)"
    rm -f "$DIR/ganesha.pid" "$DIR/rpcbind.pid"
    if [ -f "$DIR/netns" ]; then
        local ns
        ns=$(cat "$DIR/netns")
        if ip netns list | grep -qw "$ns"; then
            ip netns delete "$ns" || echo "nfsenv.sh: could not delete netns $ns" >&2
        fi
        rm -f "$DIR/netns"
    fi
}

case "$cmd" in
start)
    [ "$(id -u)" -eq 0 ] || die "needs root (ip netns add); the NFS tests cannot run as uid $(id -u)"
    for tool in ip unshare nsenter rpcbind ganesha.nfsd nfs-ls; do
        command -v "$tool" >/dev/null 2>&1 ||
            die "'$tool' not found: run scripts/deps.sh (nfs-ganesha nfs-ganesha-vfs rpcbind libnfs-utils iproute2)"
    done
    [ -f /usr/lib/x86_64-linux-gnu/ganesha/libfsalvfs.so ] || ls /usr/lib/*/ganesha/libfsalvfs.so >/dev/null 2>&1 ||
        die "ganesha's VFS FSAL is missing: install nfs-ganesha-vfs (scripts/deps.sh)"
    do_stop # a previous run's leftovers in this DIR
    rm -rf "$DIR/export" "$DIR/readonly" "$DIR/recovery"
    mkdir -p "$DIR/export" "$DIR/readonly" "$DIR/recovery"
    chmod 755 "$DIR/readonly"
    : >"$DIR/ganesha.log"
    : >"$DIR/ganesha.out"
    sed -e "s|@EXPORT_DIR@|$DIR/export|g" -e "s|@RO_DIR@|$DIR/readonly|g" \
        -e "s|@RECOVERY_DIR@|$DIR/recovery|g" \
        "$(dirname "$SELF")/ganesha.conf.in" >"$DIR/ganesha.conf"
    ns="harvbk-nfs-$$-$RANDOM"
    ip netns add "$ns" || die "cannot create network namespace $ns (root and CAP_SYS_ADMIN needed)"
    echo "$ns" >"$DIR/netns"
    ip -n "$ns" link set lo up
    # rpcbind in the namespace, with a private /run (see the header); `ip netns
    # exec`, unshare and sh all exec: $! is rpcbind's PID
    ip netns exec "$ns" unshare -m --propagation private sh -c \
        'mount -t tmpfs -o mode=0755 harvbk-nfs-run /run && mkdir -p /run/rpcbind && exec rpcbind -f -w' \
        </dev/null >"$DIR/rpcbind.log" 2>&1 &
    echo $! >"$DIR/rpcbind.pid"
    ok=0
    for i in $(seq 1 50); do
        if ip netns exec "$ns" rpcinfo -p 127.0.0.1 >/dev/null 2>&1; then ok=1; break; fi
        pid_alive "$(read_pid rpcbind)" || break
        sleep 0.1
    done
    if [ $ok -ne 1 ]; then
        cat "$DIR/rpcbind.log" >&2 || true
        do_stop
        die "rpcbind did not start in namespace $ns"
    fi
    if ! (start_ganesha); then
        do_stop
        die "ganesha did not start"
    fi
    cat >"$DIR/env" <<EOF
HARVBK_TEST_NFS_NETNS=$ns
HARVBK_TEST_NFS_URL=nfs://127.0.0.1/export
HARVBK_TEST_NFS_RO_URL=nfs://127.0.0.1/readonly
HARVBK_TEST_NFS_EXPORT_DIR=$DIR/export
HARVBK_TEST_NFS_ENV_DIR=$DIR
HARVBK_TEST_NFS_SCRIPT=$SELF
EOF
    echo "nfsenv.sh: ganesha (pid $(read_pid ganesha)) and rpcbind (pid $(read_pid rpcbind)) serve nfs://127.0.0.1/export in netns $ns"
    ;;
stop)
    do_stop
    ;;
kill-server)
    pid=$(read_pid ganesha)
    if pid_alive "$pid"; then
        kill -KILL "$pid"
        for i in $(seq 1 50); do pid_alive "$pid" || break; sleep 0.1; done
    fi
    ;;
restart-server)
    pid=$(read_pid ganesha)
    pid_alive "$pid" && die "ganesha (pid $pid) is still running"
    start_ganesha
    ;;
stop-server)
    # kill() only queues SIGSTOP: the group stop starts when one thread of
    # ganesha dequeues it, and until every thread has stopped the others go
    # on answering (on a loaded machine for tens of milliseconds). The server
    # is hung only once every thread is in state T: wait for that (bounded).
    pid=$(read_pid ganesha)
    kill -STOP "$pid"
    for i in $(seq 1 200); do
        running=$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' /proc/"$pid"/task/*/stat 2>/dev/null |
                  grep -vc '^[tT]$' || true)
        [ "$running" = 0 ] && break
        sleep 0.05
    done
    [ "$running" = 0 ] || die "ganesha (pid $pid) did not stop within 10 s"
    ;;
cont-server)
    kill -CONT "$(read_pid ganesha)"
    ;;
*)
    die "unknown command '$cmd'"
    ;;
esac
