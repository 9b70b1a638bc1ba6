# shellcheck shell=bash
# Shared by the shell tests in tests/remote (sourced, not run). Each test is a
# list of named checks printing PASS/FAIL; the script exits 1 when one failed,
# 77 when the Ceph packages are not installed.

remote_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cc=$remote_dir/ceph-cluster
failures=0

pass() { echo "PASS: $*"; }
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# check NAME CMD...: runs CMD, a check named for the behaviour it shows.
check() {
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}

finish() {
    [ "$failures" -eq 0 ] || echo "$failures check(s) failed"
    [ "$failures" -eq 0 ]
}

require_ceph() {
    local tool
    for tool in ceph-mon ceph-osd ceph rbd rados; do
        if ! command -v "$tool" >/dev/null; then
            echo "SKIP: $tool is not installed (Debian: ceph-mon ceph-osd ceph-common)"
            exit 77
        fi
    done
}

# A scratch directory for the test, removed at exit with any cluster left in
# it (a test that fails half-way still stops its daemons).
make_work() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/uwdf-ceph-test.XXXXXX") || exit 1
    trap cleanup_work EXIT
}

cleanup_work() {
    local d
    for d in "$work"/cluster*; do
        [ -d "$d" ] && "$cc" stop "$d"
    done
    rm -rf "$work"
}

# The pids among $2... that still run a ceph daemon of the cluster in DIR $1
# (a zombie does not run; a pid reused by another process is not one).
survivors() {
    local dir=$1 pid
    shift
    for pid in "$@"; do
        [ -r "/proc/$pid/cmdline" ] || continue
        grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null && continue
        tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | grep -qxF "$dir/ceph.conf" && echo "$pid"
    done
}

# Whether none of the daemons recorded in FILE ("mon-pid osd-pid") of cluster
# DIR runs any more, within $3 seconds (default 0: now).
none_left() {
    local dir=$1 file=$2 secs=${3:-0} left
    local until=$((SECONDS + secs))
    [ -s "$file" ] || { echo "no daemon pids were recorded in $file"; return 1; }
    while :; do
        # shellcheck disable=SC2046
        left=$(survivors "$dir" $(cat "$file"))
        [ -z "$left" ] && return 0
        [ $SECONDS -ge $until ] && break
        sleep 0.2
    done
    echo "still running from $dir: $left"
    return 1
}

# The pids of all processes whose command line names the conf of cluster DIR
# $1: for a cluster whose daemons may have removed their pid files.
dir_processes() {
    local f pid
    for f in /proc/[0-9]*/cmdline; do
        tr '\0' '\n' 2>/dev/null <"$f" | grep -qxF "$1/ceph.conf" || continue
        pid=${f#/proc/}
        echo "${pid%/cmdline}"
    done
}

# Waits (at most 10 s) until every thread of PID $1 is stopped: kill -STOP
# returns before they are, and meanwhile they may still serve requests.
wait_stopped() {
    local until=$((SECONDS + 10)) f st running
    while [ $SECONDS -lt $until ]; do
        running=0
        for f in /proc/"$1"/task/*/stat; do
            st=$(cat "$f" 2>/dev/null) || continue
            st=${st##*) }
            [ "${st%% *}" = T ] || running=1
        done
        [ $running = 0 ] && return 0
        sleep 0.01
    done
    echo "pid $1 did not stop"
    return 1
}

# Wall-clock milliseconds.
now_ms() {
    local us=${EPOCHREALTIME//[!0-9]/}
    echo $((us / 1000))
}

# Records the daemon pids of the running cluster (under ceph-cluster run).
record_pids() {
    echo "$UWDF_CEPH_MON_PID $UWDF_CEPH_OSD_PID" >"$1"
}
