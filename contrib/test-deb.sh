#!/bin/bash
# End-to-end test of the Debian package on this machine: build it with
# cargo-deb, install it with dpkg, check what it installed, run the installed
# runit service under runsv for a moment, then remove and purge it.
#
#   contrib/test-deb.sh [PATH.deb]     (root; default: build with `cargo deb`)
#
# Needs root, dpkg, runit, python3 and cargo-deb (see scripts/test.sh). Refuses to
# run where a statsd package or an enabled /etc/service/statsd already exists,
# and leaves the machine as it found it: runsv and the daemon are killed, the
# package purged, and the statsd user removed if this script created it.
set -euo pipefail
cd "$(dirname "$0")/.."

passed=0
ok() {
    echo "test-deb: ok: $*"
    passed=$((passed + 1))
}
fail() {
    echo "test-deb: FAIL: $*" >&2
    echo "test-deb: $passed passed, 1 failed"
    exit 1
}
# wait_until SECONDS DESCRIPTION COMMAND...: bounded poll, 0.1 s steps.
wait_until() {
    local secs=$1 what=$2
    shift 2
    local end=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$end" ] || fail "timed out after ${secs}s waiting for $what"
        sleep 0.1
    done
}

[ "$(id -u)" = 0 ] || fail "needs root (dpkg -i, chpst -u statsd)"
for b in dpkg dpkg-deb runsv sv svlogd chpst python3; do
    command -v "$b" >/dev/null || fail "$b missing: see scripts/test.sh (apt-get install -y runit python3)"
done
if dpkg-query -W -f='${Status}' statsd 2>/dev/null | grep -q installed; then
    fail "a statsd package is already installed here; not touching it"
fi
[ ! -e /etc/service/statsd ] || fail "/etc/service/statsd exists; not touching an enabled service"
user_existed=no
getent passwd statsd >/dev/null && user_existed=yes

tmp=$(mktemp -d)
runsv_pid=
cleanup() {
    set +e
    if [ -n "$runsv_pid" ]; then
        # runsv, svlogd, chpst and the daemon share runsv's process group.
        kill -KILL -- "-$runsv_pid" 2>/dev/null
        wait "$runsv_pid" 2>/dev/null
    fi
    if dpkg-query -W -f='${Status}' statsd 2>/dev/null | grep -q 'ok \(installed\|config-files\|half\)'; then
        dpkg -P statsd >/dev/null 2>&1
    fi
    if [ "$user_existed" = no ] && getent passwd statsd >/dev/null; then
        userdel statsd 2>/dev/null
        getent group statsd >/dev/null && groupdel statsd 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# --- build -------------------------------------------------------------------
if [ $# -ge 1 ]; then
    deb=$1
else
    command -v cargo-deb >/dev/null || fail "cargo-deb missing: cargo install cargo-deb"
    # cargo deb prints the path of the package as its last line on stdout.
    # --strip as the README says: the release profile keeps debug info.
    deb=$(cargo deb --strip | tail -n 1)
fi
[ -f "$deb" ] || fail "no package at '$deb'"
ok "built $deb"

contents=$(dpkg-deb -c "$deb")
for entry in "-rwxr-xr-x .* ./usr/sbin/statsd$" "-rwxr-xr-x .* ./usr/bin/statsdmonitor$" \
    "-rwxr-xr-x .* ./etc/sv/statsd/run$" "-rwxr-xr-x .* ./etc/sv/statsd/log/run$"; do
    echo "$contents" | grep -q -- "$entry" || fail "package lacks '$entry':
$contents"
done
dpkg-deb -f "$deb" Depends | grep -qw runit || fail "package does not depend on runit"
ok "package holds the binaries and the executable runit service, depends on runit"

# --- install -----------------------------------------------------------------
dpkg -i "$deb" >"$tmp/dpkg-i.out" 2>&1 || fail "dpkg -i failed: $(cat "$tmp/dpkg-i.out")"
grep -q 'ln -s /etc/sv/statsd /etc/service/' "$tmp/dpkg-i.out" ||
    fail "postinst does not tell how to enable the service: $(cat "$tmp/dpkg-i.out")"
ok "dpkg -i installed it and printed how to enable it"

/usr/sbin/statsd --help >"$tmp/help.out" 2>&1 || fail "/usr/sbin/statsd --help failed: $(cat "$tmp/help.out")"
grep -q -- '--flush-interval' "$tmp/help.out" || fail "--help does not list --flush-interval"
[ -x /usr/bin/statsdmonitor ] || fail "/usr/bin/statsdmonitor missing or not executable"
ok "/usr/sbin/statsd --help runs, /usr/bin/statsdmonitor installed"

getent passwd statsd >/dev/null || fail "postinst did not create the statsd user"
getent group statsd >/dev/null || fail "postinst did not create the statsd group"
[ -d /var/log/statsd ] || fail "postinst did not create /var/log/statsd"
logowner=$(stat -c %U /var/log/statsd)
[ "$logowner" = _runit-log ] || [ "$logowner" = nobody ] ||
    fail "/var/log/statsd owned by $logowner, not the runit log user"
dpkg-query -W -f='${Conffiles}\n' statsd | grep -q /etc/sv/statsd/run ||
    fail "/etc/sv/statsd/run is not a conffile"
ok "statsd user, /var/log/statsd ($logowner) and conffiles in place"

# --- run the installed service ------------------------------------------------
# The installed run script as shipped, but for the port: 8125 may be taken on
# this machine. The monitor port stays the default, port + 10.
read -r port < <(python3 - <<'EOF'
# A port free for TCP and UDP on every address (the daemon binds all of them
# without -n), with port + 10 free for the monitor.
import socket
def ipv6_works():
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).bind(("::1", 0))
        return True
    except OSError:
        return False
hosts = [(socket.AF_INET, "0.0.0.0")] + ([(socket.AF_INET6, "::")] if ipv6_works() else [])
def free(p):
    held = []
    try:
        for fam, host in hosts:
            for port, kind in ((p, socket.SOCK_STREAM), (p, socket.SOCK_DGRAM), (p + 10, socket.SOCK_STREAM)):
                s = socket.socket(fam, kind)
                held.append(s)
                if fam == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        for s in held:
            s.close()
for _ in range(200):
    t = socket.socket()
    t.bind(("127.0.0.1", 0))
    p = t.getsockname()[1]
    t.close()
    if p < 65000 and free(p):
        print(p)
        break
EOF
)
[ -n "$port" ] || fail "no free port pair found"
grep -q -- ' -p 8125 ' /etc/sv/statsd/run || fail "installed run script lacks '-p 8125'"
sed -i "s/ -p 8125 / -p $port /" /etc/sv/statsd/run

setsid runsv /etc/sv/statsd >"$tmp/runsv.out" 2>&1 &
runsv_pid=$!
svstat() { sv status /etc/sv/statsd 2>&1; }
wait_until 30 "sv status: run" sh -c "sv status /etc/sv/statsd | grep -q '^run: .*; run: log:'"
wait_until 30 "start-up line in /var/log/statsd/current" grep -q listening /var/log/statsd/current
pid=$(svstat | sed -n 's/^run: [^(]*(pid \([0-9]*\)).*/\1/p')
[ -n "$pid" ] || fail "no daemon pid in: $(svstat)"
user=$(ps -o user= -p "$pid" | tr -d ' ')
[ "$user" = statsd ] || fail "daemon runs as '$user', not statsd (chpst -u statsd)"
ok "runsv /etc/sv/statsd runs the daemon as statsd, svlogd writes /var/log/statsd/current"

printf 'deb.test:1|c\n' >/dev/udp/127.0.0.1/"$port"
wait_until 30 "statsdmonitor answering on port $((port + 10))" \
    sh -c "/usr/bin/statsdmonitor 127.0.0.1 $((port + 10)) | grep -q '^pending_stats: '"
ok "statsdmonitor 127.0.0.1 $((port + 10)) reads the daemon's stats"

sv down /etc/sv/statsd >/dev/null
wait_until 30 "sv status: down" sh -c "sv status /etc/sv/statsd | grep -q '^down: '"
! kill -0 "$pid" 2>/dev/null || fail "daemon $pid still alive after sv down"
sv exit /etc/sv/statsd >/dev/null
wait_until 30 "runsv to exit" sh -c "! kill -0 $runsv_pid"
wait "$runsv_pid" 2>/dev/null || true
runsv_pid=
ok "sv down stops the daemon, sv exit stops runsv"

# --- remove, purge --------------------------------------------------------------
dpkg -r statsd >"$tmp/dpkg-r.out" 2>&1 || fail "dpkg -r failed: $(cat "$tmp/dpkg-r.out")"
[ ! -e /usr/sbin/statsd ] && [ ! -e /usr/bin/statsdmonitor ] || fail "binaries left after dpkg -r"
[ ! -e /etc/sv/statsd/supervise ] || fail "runsv's supervise dir left after dpkg -r"
dpkg -P statsd >"$tmp/dpkg-p.out" 2>&1 || fail "dpkg -P failed: $(cat "$tmp/dpkg-p.out")"
[ ! -e /etc/sv/statsd ] || fail "/etc/sv/statsd left after purge: $(find /etc/sv/statsd)"
[ ! -e /var/log/statsd ] || fail "/var/log/statsd left after purge"
ok "dpkg -r and dpkg -P remove everything"

echo "test-deb: $passed passed, 0 failed"
