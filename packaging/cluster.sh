#!/bin/sh
# cluster.sh: one tasksolver master and N worker nodes as plain processes on
# 127.0.0.1 -- the topology of docker-compose.yml without Docker.
#
#   packaging/cluster.sh [-n WORKERS] [-p MASTER_PORT] [-b BINARY] [-l LOGDIR]
#                        [-m 'MASTER OPTIONS'] [-w 'WORKER OPTIONS']
#
# Workers take free ports; the master takes MASTER_PORT (default 8080; 0 for
# a free one). Prints "master URL" once the master listens and "ready ..."
# once every worker has registered, then runs until Ctrl-C or SIGTERM, which
# stop every process it started. Logs go to LOGDIR (default: a new
# directory under $TMPDIR).
set -eu

n=4
port=8080
bin=
logdir=
mopts=
wopts=
usage() {
    sed -n '2,13s/^# \{0,1\}//p' "$0" >&2
    exit 2
}
while getopts n:p:b:l:m:w:h opt; do
    case $opt in
    n) n=$OPTARG ;;
    p) port=$OPTARG ;;
    b) bin=$OPTARG ;;
    l) logdir=$OPTARG ;;
    m) mopts=$OPTARG ;;
    w) wopts=$OPTARG ;;
    *) usage ;;
    esac
done
case $n in '' | *[!0-9]*) usage ;; esac

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${bin:-${TASKSOLVER:-$here/build/server/tasksolver}}
if [ ! -x "$bin" ]; then
    echo "cluster.sh: $bin is not built (cmake -S . -B build && cmake --build build)" >&2
    exit 1
fi
logdir=${logdir:-$(mktemp -d "${TMPDIR:-/tmp}/tasksolver-cluster.XXXXXX")}
mkdir -p "$logdir"

pids=
cleanup() {
    trap - EXIT INT TERM
    for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 0' INT TERM

# start NAME ARGS...: starts a node logging to LOGDIR/NAME.log and sets
# $url to the address it listens on.
start() {
    name=$1
    shift
    # Made here: the background node opens it only once it is forked, and
    # the loop below may read it first.
    : >"$logdir/$name.log"
    # shellcheck disable=SC2086 # the option strings are meant to split
    "$bin" "$@" 2>"$logdir/$name.log" &
    pid=$!
    pids="$pids $pid"
    tries=0
    url=
    while [ -z "$url" ]; do
        url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$logdir/$name.log" | head -n 1)
        [ -n "$url" ] && break
        if ! kill -0 "$pid" 2>/dev/null || [ $tries -ge 100 ]; then
            echo "cluster.sh: $name did not start:" >&2
            cat "$logdir/$name.log" >&2
            exit 1
        fi
        tries=$((tries + 1))
        sleep 0.1
    done
}

# shellcheck disable=SC2086
start master --port "$port" $mopts
master=$url
echo "master $master"
i=1
while [ "$i" -le "$n" ]; do
    # shellcheck disable=SC2086
    start "worker$i" --port 0 --join "$master" --name "worker$i" $wopts
    i=$((i + 1))
done
tries=0
while [ "$(grep -c 'registered at' "$logdir/master.log" || true)" -lt "$n" ]; do
    if [ $tries -ge 100 ]; then
        echo "cluster.sh: workers did not register; see $logdir" >&2
        exit 1
    fi
    tries=$((tries + 1))
    sleep 0.1
done
echo "ready: $n workers; logs in $logdir; Ctrl-C stops everything"
wait
