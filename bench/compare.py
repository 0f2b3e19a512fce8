#!/usr/bin/env python3
"""Compare our statsd with Etsy's statsd 0.9.0 under the same UDP load.

Called by bench/run.sh (which installs Etsy's statsd and builds ours). For each
load and server it starts the server on free loopback ports with a fake carbon
(a TCP listener in this script), offers load with target/release/statsd-bench,
waits until the server has flushed everything it received, and measures:

- lines offered (statsd-bench's JSON) and lines counted (counter values that
  reached carbon: Etsy's `stats_counts.<name>`, our `stats.<name>` rate times the
  flush interval), hence loss;
- server CPU (utime+stime from /proc/<pid>/stat) per counted line;
- peak RSS (VmHWM) and kernel receive-buffer drops (/proc/net/udp).

Then, with 100k and 1M distinct names, the flush time and memory.
Results go to BENCHMARKS.md (Markdown) and target/bench/results.json (raw).
Only loopback addresses are used; every wait is bounded.
"""

import argparse
import datetime
import json
import os
import platform
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Where cargo put bench/run.sh's build: the workspace's target dir, at the root.
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
CLK_TCK = os.sysconf("SC_CLK_TCK")
META_PREFIXES = (b"statsd.", b"stats.statsd.", b"stats_counts.statsd.")
NUMSTATS = b"statsd.numStats"
PREFIX = "bench"  # statsd-bench's --prefix; counters are bench.c.<i>
NAMES_RATE = 100_000  # lines/s for the many-names test: slow enough for Etsy not to drop


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- fake carbon


class Carbon:
    """Plaintext carbon listener that keeps running sums, not every line,
    so a 1M-name flush does not eat the memory and CPU the servers need."""

    def __init__(self, count_prefix, multiplier, flush_gap=None, count_suffix=""):
        self.count_prefix = count_prefix.encode()
        # Only paths ending so are summed (timers: `.count`); "" takes all.
        self.count_suffix = count_suffix.encode()
        self.multiplier = multiplier
        # Servers that end a flush with no marker line (collectd): a pause of
        # flush_gap seconds between chunks separates two flushes.
        self.flush_gap = flush_gap
        self.lock = threading.Lock()
        self.flushes = []  # completed flushes, see _new_flush
        self.meta = []  # (recv monotonic time, path, value) of server stats
        self.bench_sum = 0.0
        self.bench_lines = 0
        self.open_conns = 0
        self.total_conns = 0
        self.stop = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @staticmethod
    def _new_flush():
        return {"t_first": None, "t_last": None, "t_last_chunk": None, "lines": 0, "bench_lines": 0,
                "bench_sum": 0.0}

    def _accept(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.open_conns += 1
                self.total_conns += 1
            threading.Thread(target=self._conn, args=(c,), daemon=True).start()

    def _conn(self, c):
        # Receive only, stamping each chunk; parsing happens in another thread
        # so arrival times are not skewed by this script's own (slow) parsing.
        chunks = queue.SimpleQueue()
        threading.Thread(target=self._parse, args=(chunks,), daemon=True).start()
        c.settimeout(1.0)
        try:
            while not self.stop:
                try:
                    data = c.recv(1 << 20)
                except socket.timeout:
                    continue
                except OSError:
                    break
                if not data:
                    break
                chunks.put((time.monotonic(), data))
        finally:
            c.close()
            chunks.put(None)

    def _parse(self, chunks):
        buf = b""
        cur = self._new_flush()
        cp, mult, cs = self.count_prefix, self.multiplier, self.count_suffix
        try:
            while True:
                item = chunks.get()
                if item is None:
                    break
                now, data = item
                lines = (buf + data).split(b"\n")
                buf = lines.pop()
                meta = []
                done = []
                if self.flush_gap and cur["t_first"] is not None and now - cur["t_last_chunk"] > self.flush_gap:
                    cur["t_last"] = cur["t_last_chunk"]
                    done.append(cur)
                    cur = self._new_flush()
                cur["t_last_chunk"] = now
                for line in lines:
                    if cur["t_first"] is None:
                        cur["t_first"] = now
                    cur["lines"] += 1
                    if line.startswith(cp) and (not cs or line.split(b" ")[0].endswith(cs)):
                        cur["bench_lines"] += 1
                        cur["bench_sum"] += float(line.split(b" ")[1]) * mult
                    elif line.startswith(META_PREFIXES):
                        parts = line.split(b" ")
                        if len(parts) >= 2:
                            meta.append((now, parts[0].decode(), float(parts[1])))
                        # Both servers end a flush's metrics with numStats.
                        if parts[0] == NUMSTATS:
                            cur["t_last"] = now
                            done.append(cur)
                            cur = self._new_flush()
                with self.lock:
                    self.meta.extend(meta)
                    for f in done:
                        self.flushes.append(f)
                        self.bench_sum += f["bench_sum"]
                        self.bench_lines += f["bench_lines"]
        finally:
            with self.lock:
                # Lines after the last numStats (Etsy's trailing stats, or a
                # cut final flush): keep their counts.
                if cur["bench_lines"]:
                    cur["t_last"] = time.monotonic()
                    self.flushes.append(cur)
                    self.bench_sum += cur["bench_sum"]
                    self.bench_lines += cur["bench_lines"]
                self.open_conns -= 1

    def snapshot(self):
        with self.lock:
            return list(self.flushes), self.bench_sum, self.bench_lines

    def meta_after(self, t):
        with self.lock:
            return [m for m in self.meta if m[0] >= t]

    def close(self):
        self.stop = True
        self.sock.close()
        self.thread.join(timeout=2)


# ---------------------------------------------------------------- processes


def proc_cpu(pid):
    """utime+stime of the whole process (all threads), seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy():
    """Busy CPU seconds of the whole machine (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]  # idle + iowait
    return (sum(v[:8]) - idle) / CLK_TCK


def wait_quiet(max_cores, timeout):
    """Wait (bounded) until the machine's busy CPU over 0.5 s is below
    max_cores, so a load does not start while other work hogs the shared
    cores. Returns the last busy figure, in cores."""
    deadline = time.monotonic() + timeout
    while True:
        b0, t0 = machine_busy(), time.monotonic()
        time.sleep(0.5)
        busy = (machine_busy() - b0) / (time.monotonic() - t0)
        if busy <= max_cores or time.monotonic() >= deadline:
            return busy


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])  # kB
    return 0


def udp_drops(port):
    """Kernel drops of every UDP socket bound to `port` (receive buffer full)."""
    total = 0
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if int(parts[1].rsplit(":", 1)[1], 16) == port:
                        total += int(parts[-1])
        except OSError:
            pass
    return total


def free_port():
    """A port free for UDP and TCP, with port+10 free for TCP too (our
    monitor listens there by default)."""
    for _ in range(200):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        held = [s]
        try:
            if port + 10 > 65535:
                continue
            for p in (port, port + 10):
                t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                held.append(t)
                t.bind(("127.0.0.1", p))
            return port
        except OSError:
            continue
        finally:
            for h in held:
                h.close()
    raise RuntimeError("no free port pair found")


def wait_tcp(port, proc, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def udp_bound(port):
    """True once some socket is bound to UDP `port` (servers with no TCP port)."""
    hexport = f":{port:04X}"
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(name) as f:
                if any(line.split()[1].endswith(hexport) for line in list(f)[1:]):
                    return True
        except OSError:
            pass
    return False


def udp_queued(port):
    """Bytes queued in the receive buffers of UDP `port` (rx_queue)."""
    hexport, total = f":{port:04X}", 0
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(name) as f:
                for line in list(f)[1:]:
                    parts = line.split()
                    if parts[1].endswith(hexport):
                        total += int(parts[4].split(":")[1], 16)
        except OSError:
            pass
    return total


def wait_udp(port, proc, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if udp_bound(port):
            return True
        time.sleep(0.05)
    return False


# Deployed, the daemons run unprivileged (the seed's runit script uses chpst
# -u statsd): setpriv drops to this user before exec, so the pid is the
# server's own. Set by main() from --user; empty keeps the caller's user.
RUN_AS = {"user": ""}


def as_user(cmd):
    user = RUN_AS["user"]
    if not user or os.geteuid() != 0:
        return cmd
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"] + cmd


def stop_process(proc, timeout=15):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    return proc.returncode


class Ours:
    name = "ours"
    label = "ours (Rust)"

    def __init__(self, binary, extra):
        self.binary = binary
        self.extra = extra

    def count_spec(self, fi):
        # Counters flush as per-second rates: value * interval = count.
        return f"stats.{PREFIX}.c.", fi

    def command(self, port, carbon_port, fi, workdir):
        return [str(self.binary), "-p", str(port), "-n", "127.0.0.1",
                "--flush-interval", str(fi), "--graphite-host", "127.0.0.1",
                "--graphite-port", str(carbon_port), "-q"] + self.extra

    def ready_port(self, port):
        return port  # TCP on the metrics port

    flush_gap = None
    self_counting = False

    def flush_seconds(self, meta):
        vals = [v for _, p, v in meta if p == "statsd.flush_duration"]
        return max(vals) if vals else None

    def render_seconds(self, meta):
        vals = [v for _, p, v in meta if p == "statsd.render.time"]
        return max(vals) if vals else None


class Etsy:
    name = "etsy"
    label = "Etsy statsd 0.9.0"

    def __init__(self, statsjs):
        self.statsjs = statsjs

    def count_spec(self, fi):
        return f"stats_counts.{PREFIX}.c.", 1.0

    def command(self, port, carbon_port, fi, workdir):
        self.mgmt = free_port()
        cfg = Path(workdir) / f"etsy-{port}.js"
        cfg.write_text(json.dumps({
            "port": port, "address": "127.0.0.1",
            "mgmt_port": self.mgmt, "mgmt_address": "127.0.0.1",
            "graphitePort": carbon_port, "graphiteHost": "127.0.0.1",
            "flushInterval": int(fi * 1000),
            "backends": ["./backends/graphite"],
        }))
        return ["node", str(self.statsjs), str(cfg)]

    def ready_port(self, port):
        return self.mgmt  # its UDP socket is bound before the mgmt server

    flush_gap = None
    self_counting = False

    def flush_seconds(self, meta):
        # process_metrics + graphite formatting, both in ms, per flush.
        per = {}
        for t, p, v in meta:
            if p in ("stats.statsd.processing_time", "stats.statsd.graphiteStats.calculationtime"):
                per.setdefault(round(t, 1), 0.0)
                per[round(t, 1)] += v
        return max(per.values()) / 1000 if per else None

    def render_seconds(self, meta):
        vals = [v for _, p, v in meta if p == "stats.statsd.graphiteStats.calculationtime"]
        return max(vals) / 1000 if vals else None


class Collectd:
    """collectd's statsd plugin (Debian collectd-core) with write_graphite."""
    name = "collectd"
    label = "collectd 5.12 statsd plugin"
    # Counters with CounterSum: `count-<name>` is the change since the last read.
    flush_gap = 0.3
    self_counting = False

    def count_spec(self, fi):
        return f"collectd.bench.statsd.count-{PREFIX}.c.", 1.0

    def command(self, port, carbon_port, fi, workdir):
        base = Path(workdir) / f"collectd-{port}"
        base.mkdir(exist_ok=True)
        if RUN_AS["user"] and os.geteuid() == 0:
            shutil.chown(base, RUN_AS["user"], RUN_AS["user"])
        cfg = Path(workdir) / f"collectd-{port}.conf"
        cfg.write_text(f"""Hostname "bench"
FQDNLookup false
Interval {fi}
BaseDir "{base}"
PIDFile "{base}/collectd.pid"
PluginDir "/usr/lib/collectd"
TypesDB "/usr/share/collectd/types.db"
# A line every interval even when idle, so flushes can be told apart.
LoadPlugin load
LoadPlugin statsd
# Without a flush interval write_graphite holds a part-filled buffer until more comes.
<LoadPlugin write_graphite>
  FlushInterval {fi}
</LoadPlugin>
<Plugin statsd>
  Host "127.0.0.1"
  Port "{port}"
  CounterSum true
</Plugin>
<Plugin write_graphite>
  <Node "carbon">
    Host "127.0.0.1"
    Port "{carbon_port}"
    Protocol "tcp"
    Prefix "collectd."
    EscapeCharacter "_"
    PreserveSeparator true
  </Node>
</Plugin>
""")
        return ["collectd", "-f", "-C", str(cfg)]

    def ready(self, port, proc):
        return wait_udp(port, proc, 15)

    def flush_seconds(self, meta):
        return None

    def render_seconds(self, meta):
        return None


class Floor:
    """bench/floor/floor.c: recvmmsg into a buffer and discard. The least a
    receiver can pay for the load; counts datagrams itself (no carbon)."""
    name = "floor"
    label = "kernel floor (C recvmmsg, discards)"
    flush_gap = None
    self_counting = True

    def __init__(self, binary):
        self.binary = binary

    def count_spec(self, fi):
        return "-", 1.0

    def command(self, port, carbon_port, fi, workdir):
        return [str(self.binary), str(port), "32"]

    def ready(self, port, proc):
        return wait_udp(port, proc, 15)

    def flush_seconds(self, meta):
        return None

    def render_seconds(self, meta):
        return None


class Session:
    """One server process with its own fake carbon."""

    def __init__(self, server, fi, workdir, extra=(), spec=None):
        self.server = server
        extra = list(extra)
        self.fi = fi
        prefix, mult, suffix = spec or (*server.count_spec(fi), "")
        self.carbon = Carbon(prefix, mult, server.flush_gap, suffix)
        self.port = free_port()
        cmd = as_user(server.command(self.port, self.carbon.port, fi, workdir) + extra)
        self.cmdline = " ".join(cmd).replace(f" {self.port} ", " PORT ").replace(
            f" {self.carbon.port} ", " CARBON_PORT ")
        self.logf = open(Path(workdir) / f"{server.name}-{self.port}.log", "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        ready = server.ready(self.port, self.proc) if hasattr(server, "ready") else \
            wait_tcp(server.ready_port(self.port), self.proc, 15)
        if not ready:
            self.close()
            raise RuntimeError(f"{server.name} did not start: {self.cmdline} "
                               f"(exit {self.proc.returncode}, log {self.logf.name})")

    def wait_flushes(self, n, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.carbon.snapshot()[0]) >= n:
                return True
            time.sleep(0.05)
        return False

    def wait_drained(self, t_end, timeout, zero_flushes=2):
        """Wait until `zero_flushes` flushes that began after the load ended
        carried no bench counts: whatever the server had queued is counted."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            flushes, _, _ = self.carbon.snapshot()
            late = [f for f in flushes if f["t_first"] and f["t_first"] > t_end]
            quiet = 0
            for f in reversed(late):
                if f["bench_sum"] != 0:
                    break
                quiet += 1
            if quiet >= zero_flushes:
                return True
            time.sleep(0.05)
        return False

    def close(self):
        code = stop_process(self.proc)
        # Our server flushes once more on SIGTERM: let that arrive.
        deadline = time.monotonic() + 5
        while self.carbon.open_conns and time.monotonic() < deadline:
            time.sleep(0.05)
        self.carbon.close()
        self.logf.close()
        return code


def run_bench(bench_bin, port, args, timeout):
    cmd = [str(bench_bin), "--target", f"127.0.0.1:{port}", "--prefix", PREFIX] + args
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"statsd-bench failed: {' '.join(cmd)}: {out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1]), " ".join(cmd[:1] + ["--target", "127.0.0.1:PORT"] + cmd[3:])


# ---------------------------------------------------------------- measurements


def bench_args(rate, duration, lpd):
    return ["--rate", str(rate), "--duration", str(duration),
            "--lines-per-datagram", str(lpd), "--names", "1000", "--batch", "32"]


def measure_floor(server, bench_bin, rate, lpd, duration, workdir, quiet):
    """The floor receiver: it counts datagrams itself, so lines counted are
    its datagrams times the lines in each (every datagram has lpd lines)."""
    s = Session(server, 1, workdir)
    r = {"server": server.name, "rate": rate, "lpd": lpd, "server_cmd": s.cmdline}
    try:
        r["busy_before"] = wait_quiet(*quiet)
        cpu0, busy0, drops0 = proc_cpu(s.proc.pid), machine_busy(), udp_drops(s.port)
        t0 = time.monotonic()
        b, bcmd = run_bench(bench_bin, s.port, bench_args(rate, duration, lpd), duration + 60)
        t_end = time.monotonic()
        cpu_mid, busy1 = proc_cpu(s.proc.pid), machine_busy()
        r["bench_cmd"] = bcmd
        deadline = time.monotonic() + 10
        while udp_queued(s.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        r["drained"] = not udp_queued(s.port)
        r["t_drained"] = time.monotonic() - t_end
        cpu1 = proc_cpu(s.proc.pid)
        r["hwm_kib"] = proc_status(s.proc.pid, "VmHWM")
        r["kernel_drops"] = udp_drops(s.port) - drops0
        r["exit_code"] = s.close()
        got = json.loads(Path(s.logf.name).read_text().strip().splitlines()[-1])
        counted = got["datagrams"] * lpd
        r.update({
            "offered": b["lines"], "offered_rate": b["rate_lines_per_s"], "datagrams": b["datagrams"],
            "counted": counted, "floor_calls": got["calls"],
            "loss_pct": 100.0 * (1 - counted / b["lines"]) if b["lines"] else 0.0,
            "cpu_s": cpu1 - cpu0, "wall_s": t_end - t0 + r["t_drained"],
            "ns_per_line": (cpu1 - cpu0) * 1e9 / counted if counted else None,
            "bench_cpu_ns_per_line": b["cpu_ns_per_line"],
            "bench_cpu_s": b["cpu_user_s"] + b["cpu_sys_s"], "bench": b,
            "bench_send_errors": b["send_errors"],
            "other_cores": max(0.0, (busy1 - busy0) - (cpu_mid - cpu0)
                               - (b["cpu_user_s"] + b["cpu_sys_s"])) / (t_end - t0),
        })
        return r
    finally:
        if s.proc.poll() is None:
            s.close()


def measure_load(server, bench_bin, rate, lpd, duration, fi, workdir, quiet=(0.5, 20.0)):
    if server.self_counting:
        return measure_floor(server, bench_bin, rate, lpd, duration, workdir, quiet)
    s = Session(server, fi, workdir)
    r = {"server": server.name, "rate": rate, "lpd": lpd, "server_cmd": s.cmdline}
    try:
        # Steady state first: one flush proves carbon is reachable.
        if not s.wait_flushes(1, fi * 3 + 10):
            raise RuntimeError(f"{server.name}: no flush reached carbon")
        r["busy_before"] = wait_quiet(*quiet)
        _, sum0, _ = s.carbon.snapshot()
        cpu0 = proc_cpu(s.proc.pid)
        busy0 = machine_busy()
        drops0 = udp_drops(s.port)
        t0 = time.monotonic()
        b, bcmd = run_bench(bench_bin, s.port, bench_args(rate, duration, lpd), duration + 60)
        t_end = time.monotonic()
        cpu_mid, busy1 = proc_cpu(s.proc.pid), machine_busy()
        r["bench_cmd"] = bcmd
        drained = s.wait_drained(t_end, fi * 4 + 60)
        cpu1 = proc_cpu(s.proc.pid)
        r["t_drained"] = time.monotonic() - t_end
        r["drained"] = drained
        r["hwm_kib"] = proc_status(s.proc.pid, "VmHWM")
        r["kernel_drops"] = udp_drops(s.port) - drops0
        _, sum1, _ = s.carbon.snapshot()
        r["exit_code"] = s.close()
        _, sum2, _ = s.carbon.snapshot()
        counted = round(sum2 - sum0) // max(1, b["counter_value"])
        r.update({
            "offered": b["lines"],
            "offered_rate": b["rate_lines_per_s"],
            "datagrams": b["datagrams"],
            "counted": counted,
            "counted_at_final_flush": round(sum2 - sum1),
            "loss_pct": 100.0 * (1 - counted / b["lines"]) if b["lines"] else 0.0,
            "cpu_s": cpu1 - cpu0,
            "wall_s": t_end - t0 + r["t_drained"],
            "ns_per_line": (cpu1 - cpu0) * 1e9 / counted if counted else None,
            "bench_cpu_ns_per_line": b["cpu_ns_per_line"],
            "bench_cpu_s": b["cpu_user_s"] + b["cpu_sys_s"],
            "bench": b,
            "bench_send_errors": b["send_errors"],
            # CPU used by everything else on the machine while the load ran,
            # in cores: the noise from other work sharing the 2 cores.
            "other_cores": max(0.0, (busy1 - busy0) - (cpu_mid - cpu0)
                               - (b["cpu_user_s"] + b["cpu_sys_s"])) / (t_end - t0),
        })
        return r
    finally:
        if s.proc.poll() is None:
            s.close()


def measure_names(server, bench_bin, n, fi, workdir):
    """Send each of n names once, then measure the flush that carries them."""
    # Ours caps distinct names per interval (--max-names); lift the cap so the
    # flush carries every name.
    extra = ["--max-names", str(2 * n)] if server.name == "ours" else []
    s = Session(server, fi, workdir, extra)
    r = {"server": server.name, "names": n, "server_cmd": s.cmdline}
    try:
        rss0 = proc_status(s.proc.pid, "VmRSS")
        t0 = time.monotonic()
        rate = NAMES_RATE
        b, bcmd = run_bench(bench_bin, s.port, [
            "--rate", str(rate), "--lines", str(n), "--names", str(n),
            "--lines-per-datagram", "20", "--max-duration", "120",
        ], 180)
        t_end = time.monotonic()
        r["bench_cmd"] = bcmd
        # The flush that carries the last names, then one more (our server
        # reports a flush's duration in the flush after it).
        r["drained"] = s.wait_drained(t_end, fi * 4 + 120, zero_flushes=1) and \
            s.wait_flushes(len(s.carbon.snapshot()[0]) + 1, fi * 2 + 60)
        flushes, total, _ = s.carbon.snapshot()
        meta = s.carbon.meta_after(t0)
        big = max((f for f in flushes if f["t_first"] and f["t_first"] >= t0),
                  key=lambda f: f["lines"], default=None)
        r.update({
            "offered": b["lines"],
            "counted": round(total),
            "loss_pct": 100.0 * (1 - round(total) / b["lines"]) if b["lines"] else 0.0,
            "rss_before_kib": rss0,
            "rss_after_kib": proc_status(s.proc.pid, "VmRSS"),
            "hwm_kib": proc_status(s.proc.pid, "VmHWM"),
            "flush_lines": big["lines"] if big else None,
            "flush_transfer_s": (big["t_last"] - big["t_first"]) if big else None,
            "flush_reported_s": server.flush_seconds(meta),
            "render_reported_s": server.render_seconds(meta),
        })
        r["exit_code"] = s.close()
        return r
    finally:
        if s.proc.poll() is None:
            s.close()


TIMER_NAMES, TIMER_SAMPLES, TIMER_RATE = 100_000, 10, 100_000


def measure_timers(server, bench_bin, fi, workdir, quiet):
    """TIMER_NAMES timers, TIMER_SAMPLES samples each, within one flush
    interval as far as the rate allows; lines counted are the `.count` lines
    of the bench's timers at carbon (both servers write the raw count)."""
    extra = ["--max-names", str(2 * TIMER_NAMES)] if server.name == "ours" else []
    s = Session(server, fi, workdir, extra, spec=(f"stats.timers.{PREFIX}.ms.", 1.0, ".count"))
    r = {"server": server.name, "timers": TIMER_NAMES, "samples": TIMER_SAMPLES, "server_cmd": s.cmdline}
    try:
        if not s.wait_flushes(1, fi * 3 + 10):
            raise RuntimeError(f"{server.name}: no flush reached carbon")
        r["busy_before"] = wait_quiet(*quiet)
        cpu0, drops0 = proc_cpu(s.proc.pid), udp_drops(s.port)
        t0 = time.monotonic()
        lines = TIMER_NAMES * TIMER_SAMPLES
        b, bcmd = run_bench(bench_bin, s.port, [
            "--types", "ms", "--rate", str(TIMER_RATE), "--lines", str(lines),
            "--names", str(TIMER_NAMES), "--lines-per-datagram", "20", "--max-duration", "120",
        ], 180)
        t_end = time.monotonic()
        r["bench_cmd"] = bcmd
        r["drained"] = s.wait_drained(t_end, fi * 4 + 120, zero_flushes=1)
        cpu1 = proc_cpu(s.proc.pid)
        r["hwm_kib"] = proc_status(s.proc.pid, "VmHWM")
        r["kernel_drops"] = udp_drops(s.port) - drops0
        r["exit_code"] = s.close()
        _, total, _ = s.carbon.snapshot()
        counted = round(total)
        r.update({
            "offered": b["lines"], "counted": counted,
            "loss_pct": 100.0 * (1 - counted / b["lines"]) if b["lines"] else 0.0,
            "cpu_s": cpu1 - cpu0, "wall_s": time.monotonic() - t0,
            "ns_per_line": (cpu1 - cpu0) * 1e9 / counted if counted else None,
        })
        return r
    finally:
        if s.proc.poll() is None:
            s.close()


def timers_markdown(results, servers, fi):
    L = ["## Many timers\n",
         f"{TIMER_NAMES:,} timers × {TIMER_SAMPLES} samples each (`--types ms`, 20-line datagrams at "
         f"{TIMER_RATE // 1000}k lines/s, flush interval {fi} s). Lines counted: the `.count` of every "
         "bench timer at carbon. CPU: the server's from before the load until its flushes carry no "
         "more bench timers (rendering every percentile included), per counted line.\n",
         "| server | lines offered | lines counted | loss | server CPU per counted line | "
         "ours / this server's CPU | peak RSS | kernel drops |",
         "|---|---:|---:|---:|---:|---:|---:|---:|"]
    by = {}
    for srv in servers:
        rs = [r for r in results if r["server"] == srv.name and "error" not in r]
        if rs:
            by[srv.name] = (srv, {k: med([r[k] for r in rs]) for k in
                                  ("offered", "counted", "loss_pct", "ns_per_line", "hwm_kib", "kernel_drops")})
        for r in results:
            if r["server"] == srv.name and "error" in r:
                L.append(f"| {srv.label} | failed: {r['error'][:80]} |||||||")
    ours = by.get("ours", (None, {}))[1].get("ns_per_line")
    for name, (srv, m) in by.items():
        ratio = f"{ours / m['ns_per_line']:.3f}" if ours and m["ns_per_line"] else "n/a"
        L.append(f"| {srv.label} | {m['offered']:,.0f} | {m['counted']:,.0f} | {m['loss_pct']:.1f} % | "
                 f"{fmt(m['ns_per_line'], ',.0f')} ns | {ratio} | {m['hwm_kib'] / 1024:.1f} MiB | "
                 f"{m['kernel_drops']:,.0f} |")
    return L


def check_ours(ours, bench_bin, workdir):
    """True when our binary runs as a server and its counts reach carbon."""
    try:
        s = Session(ours, 1, workdir)
    except RuntimeError as e:
        log(f"our server is not usable yet: {e}")
        return False
    try:
        run_bench(bench_bin, s.port, ["--lines", "10", "--lines-per-datagram", "5"], 30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if round(s.carbon.snapshot()[1]) >= 10:
                return True
            time.sleep(0.1)
        log("our server started but its counts did not reach carbon")
        return False
    finally:
        s.close()


# ---------------------------------------------------------------- report


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30,
                              check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = proc_meminfo_gib()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": mem,
        "kernel": platform.release(),
        "rmem_default": Path("/proc/sys/net/core/rmem_default").read_text().strip(),
        "rmem_max": Path("/proc/sys/net/core/rmem_max").read_text().strip(),
        "node": sh(["node", "--version"]),
        "rustc": sh(["rustc", "--version"]),
        "git": sh(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
    }


def proc_meminfo_gib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    return "?"


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def secs(v):
    return "n/a" if v is None else f"{v:.3f} s"


def load_label(rate, lpd):
    r = f"{rate / 1e6:g}M" if rate >= 1_000_000 else f"{rate / 1e3:g}k"
    return f"{r} lines/s × {lpd}-line datagrams"


PROXY_MARK = "<!-- written by bench/proxy.sh -->"


def write_markdown(path, args, mach, loads, names, servers, notes, argv, timers=()):
    L = []
    L.append("# Benchmarks\n")
    L.append("Our statsd against Etsy's statsd 0.9.0 (node) and collectd's statsd plugin (C) on the same machine,")
    L.append("one server at a time, loaded over loopback UDP by `statsd-bench`, counting what reaches a fake carbon;")
    L.append("beside them the kernel floor, a C `recvmmsg` receiver that discards what it gets (bench/floor).")
    L.append(f"As deployed: every server runs as the unprivileged user `{getattr(args, 'user', '') or 'root'}` "
             f"(setpriv), ours with `--udp-buffer {getattr(args, 'udp_buffer', 'default')}` (a stock kernel's "
             "rmem_max), the others with the kernel's default buffer (rmem_default).")
    L.append("Generated by `bench/run.sh`; do not edit the figures by hand.\n")
    L.append(f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}")
    L.append(f"- Machine: {mach['nproc']} cores ({mach['cpu']}), {mach['mem_gib']} GiB, Linux {mach['kernel']}; "
             f"net.core.rmem_default={mach['rmem_default']}, rmem_max={mach['rmem_max']}")
    L.append(f"- Software: {mach['rustc']}, node {mach['node']}, this repo at `{mach['git']}`")
    L.append(f"- Load average when the run started: {' '.join(mach['loadavg'])} "
             "(the 2 cores are shared with other work: figures are noisy)")
    L.append(f"- Command: `{' '.join(['bench/run.sh'] + argv)}`")
    L.append(f"- Each load: {args.duration} s, 1000 distinct counter names, counter value 1, "
             f"flush interval {args.flush_interval} s, {args.reps} run(s), median shown.\n")
    for n in notes:
        L.append(f"> {n}\n")

    L.append("## Loss and CPU under load\n")
    L.append("| load | server | offered lines/s (achieved) | lines offered | lines counted | loss | "
             "server CPU per counted line | peak RSS | kernel drops | bench CPU per line | other CPU load |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    keys = []
    for r in loads:
        k = (r["rate"], r["lpd"])
        if k not in keys:
            keys.append(k)
    summary = {}
    for rate, lpd in keys:
        for srv in servers:
            rs = [r for r in loads if (r["rate"], r["lpd"], r["server"]) == (rate, lpd, srv.name) and "error" not in r]
            errs = [r for r in loads if (r["rate"], r["lpd"], r["server"]) == (rate, lpd, srv.name) and "error" in r]
            if not rs:
                if errs:
                    L.append(f"| {load_label(rate, lpd)} | {srv.label} | failed: {errs[0]['error'][:80]} |||||||")
                continue
            m = {k: med([r[k] for r in rs]) for k in
                 ("offered_rate", "offered", "counted", "loss_pct", "ns_per_line", "hwm_kib",
                  "kernel_drops", "bench_cpu_ns_per_line", "other_cores")}
            summary[(rate, lpd, srv.name)] = m
            flag = "" if all(r["drained"] for r in rs) else " (not drained)"
            L.append(f"| {load_label(rate, lpd)} | {srv.label} | {fmt(m['offered_rate'], ',.0f')} | "
                     f"{fmt(m['offered'], ',.0f')} | {fmt(m['counted'], ',.0f')}{flag} | "
                     f"{fmt(m['loss_pct'], '.1f')} % | {fmt(m['ns_per_line'], ',.0f')} ns | "
                     f"{fmt(m['hwm_kib'] / 1024 if m['hwm_kib'] else None, '.1f')} MiB | "
                     f"{fmt(m['kernel_drops'], ',.0f')} | {fmt(m['bench_cpu_ns_per_line'], ',.0f')} ns | "
                     f"{fmt(m['other_cores'], '.2f')} cores |")
    peers = [srv for srv in servers if srv.name != "ours"]
    if any(srv.name == "ours" for srv in servers) and peers:
        L.append("\nCPU per counted line, ours / each peer's (goals: at most 0.10 of Etsy's, 0.33 of "
                 "collectd's, 1.5 of the floor's), and loss of each (goals: 0 % at 1M and < 0.5 % at 4M "
                 "lines/s, never more than collectd):\n")
        L.append("| load | " + " | ".join(f"ours / {p.name} CPU" for p in peers) + " | loss ours | "
                 + " | ".join(f"loss {p.name}" for p in peers) + " |")
        L.append("|---|" + "---:|" * (2 * len(peers) + 1))
        for rate, lpd in keys:
            o = summary.get((rate, lpd, "ours"))
            if not o:
                continue
            ratios, losses = [], []
            for peer in peers:
                e = summary.get((rate, lpd, peer.name))
                ok = e and o["ns_per_line"] and e["ns_per_line"]
                ratios.append(f"{o['ns_per_line'] / e['ns_per_line']:.3f}" if ok else "n/a")
                losses.append(f"{e['loss_pct']:.1f} %" if e and e["loss_pct"] is not None else "n/a")
            L.append(f"| {load_label(rate, lpd)} | " + " | ".join(ratios) + f" | {fmt(o['loss_pct'], '.1f')} % | "
                     + " | ".join(losses) + " |")

    L.append("\n<details><summary>Every run</summary>\n")
    L.append("| load | server | run | achieved lines/s | loss | server CPU per line | other CPU load |")
    L.append("|---|---|---:|---:|---:|---:|---:|")
    order = [s.name for s in servers]
    for r in sorted(loads, key=lambda r: (keys.index((r["rate"], r["lpd"])), order.index(r["server"]), r["rep"])):
        srv = next(s for s in servers if s.name == r["server"])
        if "error" in r:
            L.append(f"| {load_label(r['rate'], r['lpd'])} | {srv.label} | {r['rep'] + 1} | failed | | | |")
            continue
        L.append(f"| {load_label(r['rate'], r['lpd'])} | {srv.label} | {r['rep'] + 1} | "
                 f"{r['offered_rate']:,.0f} | {r['loss_pct']:.1f} % | {fmt(r['ns_per_line'], ',.0f')} ns | "
                 f"{r['other_cores']:.2f} cores |")
    L.append("\n</details>")

    if names:
        L.append("\n## Many distinct names\n")
        L.append(f"Each name sent once as a counter (20-line datagrams at {NAMES_RATE // 1000}k lines/s), flush interval "
                 f"{args.names_flush_interval} s; figures of the flush that carried them.\n")
        L.append("| names | server | names counted | lines in that flush | flush time reported by the server | "
                 "of which rendering | flush transfer seen by carbon | RSS after | peak RSS |")
        L.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in names:
            srv = next(s for s in servers if s.name == r["server"])
            if "error" in r:
                L.append(f"| {r['names']:,} | {srv.label} | failed: {r['error'][:80]} |||||||")
                continue
            L.append(f"| {r['names']:,} | {srv.label} | {r['counted']:,} | {fmt(r['flush_lines'], ',')} | "
                     f"{secs(r['flush_reported_s'])} | {secs(r['render_reported_s'])} | "
                     f"{secs(r['flush_transfer_s'])} | {r['rss_after_kib'] / 1024:.1f} MiB | "
                     f"{r['hwm_kib'] / 1024:.1f} MiB |")

    if timers:
        L.append("")
        L.extend(timers_markdown(timers, servers, getattr(args, "names_flush_interval", 15)))
    L.append("\n## Reading these figures\n")
    L.append("- The machine's 2 cores are shared with other work; the \"other CPU load\" column shows how much "
             "of them it took during each load. At 4M lines/s our server and the generator (which pays the kernel's "
             "loopback delivery) need about 1 core between them, so loss there depends on what else runs; "
             "see \"Every run\" above.")
    L.append("- One sender thread offers at most about 400k datagrams/s on this machine, less when it is busy: "
             "on loopback the sender pays the kernel's delivery of each datagram (about 2.2-3 µs). Rows whose "
             "achieved rate is below the asked rate show what could be offered, not the asked load.")
    L.append(f"- Etsy's statsd, collectd and the floor run with the kernel's default receive buffer "
             f"(rmem_default = {mach['rmem_default']} bytes); ours asks for `--udp-buffer "
             f"{getattr(args, 'udp_buffer', '?')}`, which an unprivileged process gets up to rmem_max.")
    L.append("- collectd: `CounterSum true`, so `collectd.bench.statsd.count-<name>` carries each interval's "
             "count; write_graphite over TCP to the same fake carbon. It sends no end-of-flush line: a 0.3 s pause "
             "between chunks separates its flushes. It reports no flush time of its own.")
    L.append("- Floor: counts datagrams itself (lines = datagrams × lines per datagram); it has no carbon.")
    L.append("- CPU per counted line favours a server that drops: lines the kernel drops cost it nothing. "
             "Compare the ratio at loads where both lose little.")

    L.append("\n## How it is measured\n")
    L.append("- `statsd-bench` (bench/statsd-bench) sends deterministic lines `bench.c.<i>:1|c` with "
             "`sendmmsg`, paced by a token bucket, and prints exactly how many lines it sent (JSON).")
    L.append("- Lines counted: the counter values that reached the fake carbon, summed over every flush: "
             "Etsy's `stats_counts.bench.c.*`; ours `stats.bench.c.*` (a per-second rate) × the flush interval.")
    L.append("- After the load the script waits until two flushes in a row carry no bench counts, so "
             "everything the server had queued is counted; then it reads CPU and memory, and stops the server "
             "(ours flushes once more on SIGTERM; that flush is included).")
    L.append("- Server CPU: utime+stime of the process (all threads) from `/proc/<pid>/stat`, from just before "
             "the load until drained (idle flushes included), divided by lines counted. Peak RSS: `VmHWM`.")
    L.append("- Kernel drops: the `drops` column of `/proc/net/udp` for the server's port (receive buffer full).")
    L.append(f"- Before each load the script waits up to {getattr(args, 'quiet_wait', 0):g} s for the machine's "
             f"busy CPU to fall below {getattr(args, 'quiet_cores', 0):g} cores, to start on a quiet machine "
             "when it can; other work can still start during the load.")
    L.append("- Bench CPU: the load generator's own utime+stime per line sent; it shares the 2 cores with the server. "
             "On loopback the sender's system time includes the kernel's delivery of each datagram into the "
             "server's socket (and waking the server), so it grows with datagrams, not lines.")
    L.append("- Other CPU load: busy CPU of the whole machine (`/proc/stat`) during the load, minus the server and "
             "the generator, in cores: other work on the shared machine. High values mean noisy figures.")
    L.append("- Flush time: ours reports `statsd.flush_duration` and `statsd.render.time`; Etsy reports "
             "`stats.statsd.processing_time` + `stats.statsd.graphiteStats.calculationtime` (ms). "
             "\"Flush transfer\" is the time from the first to the last line of that flush at carbon.")
    L.append("\nExact commands (ports vary per run):\n")
    L.append("```")
    seen = set()
    for r in loads + names:
        for k in ("server_cmd", "bench_cmd"):
            c = r.get(k)
            if c:
                c = c.replace(str(ROOT) + "/", "")
                c = " ".join(w if not w.startswith("/tmp/") else "CONFIG.js" for w in c.split())
                key = (k, c.split("--rate")[0]) if k == "bench_cmd" else (r["server"], k, r["server"])
                if key not in seen:
                    seen.add(key)
                    L.append(c)
    L.append("```")
    L.append("\nEtsy's config: `{port, address: \"127.0.0.1\", mgmt_port, mgmt_address: \"127.0.0.1\", "
             "graphitePort, graphiteHost: \"127.0.0.1\", flushInterval, backends: [\"./backends/graphite\"]}`.")
    L.append("\nRaw per-run figures: `target/bench/results.json` after a run.")
    # The proxy section is bench/proxy.sh's: kept as that run wrote it.
    previous = Path(path).read_text() if Path(path).exists() else ""
    kept = previous[previous.find(PROXY_MARK):] if PROXY_MARK in previous else ""
    Path(path).write_text("\n".join(L) + "\n" + ("\n" + kept if kept else ""))


# ---------------------------------------------------------------- main


def parse_loads(text):
    loads = []
    for item in text.split(","):
        lpd, rate = item.lower().split("x")
        mult = 1
        if rate.endswith("k"):
            rate, mult = rate[:-1], 1_000
        elif rate.endswith("m"):
            rate, mult = rate[:-1], 1_000_000
        loads.append((int(float(rate) * mult), int(lpd)))
    return loads


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="1 run of 2 s per load, three loads, 100k names only")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quiet-cores", type=float, default=0.5,
                    help="before each load, wait until the machine's busy CPU is below this many cores...")
    ap.add_argument("--quiet-wait", type=float, default=20.0,
                    help="...for at most this many seconds (0: do not wait)")
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--flush-interval", type=int, default=1)
    ap.add_argument("--names-flush-interval", type=int, default=15)
    ap.add_argument("--loads", default="20x200k,20x1m,20x4m,1x200k,1x500k,1x1m",
                    help="comma list of LINESxRATE, e.g. 20x4m = 4M lines/s as 20-line datagrams")
    ap.add_argument("--names-sizes", default="100000,1000000")
    ap.add_argument("--no-names", action="store_true")
    ap.add_argument("--no-timers", action="store_true",
                    help="skip the many-timers test (100k timers x 10 samples)")
    ap.add_argument("--timers-servers", default="ours,etsy", help="servers for the many-timers test")
    ap.add_argument("--servers", default="ours,etsy,collectd,floor",
                    help="comma list of ours, etsy, collectd (statsd plugin), floor (bench/floor)")
    ap.add_argument("--names-servers", default="ours,etsy,collectd",
                    help="servers for the many-names test")
    ap.add_argument("--ours-bin", default=str(TARGET / "release/statsd"))
    ap.add_argument("--ours-args", default="", help="extra flags for our server, e.g. '--workers 2'")
    ap.add_argument("--udp-buffer", type=int, default=212992,
                    help="our --udp-buffer: the others get rmem_default; 212992 is a stock kernel's "
                         "rmem_max, all an unprivileged daemon may ask")
    ap.add_argument("--user", default="statsd",
                    help="run every server as this user (setpriv), as deployed; '' keeps root")
    ap.add_argument("--floor-bin", default=str(TARGET / "floor/floor"))
    ap.add_argument("--bench-bin", default=str(TARGET / "release/statsd-bench"))
    ap.add_argument("--etsy", default=str(ROOT / "bench/.etsy/node_modules/statsd/stats.js"))
    ap.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    ap.add_argument("--render-only", metavar="RESULTS_JSON",
                    help="rewrite --output from a saved target/bench/results.json, running nothing")
    ap.add_argument("--argv", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.render_only:
        saved = json.loads(Path(args.render_only).read_text())
        sargs = argparse.Namespace(**saved["args"])
        names_in = {r["server"] for r in saved["loads"] + saved["names"] + saved.get("timers", [])}
        servers = [s for s in (Ours(None, []), Etsy(None), Collectd(), Floor(None)) if s.name in names_in]
        argv = sargs.argv.split() if sargs.argv is not None else []
        write_markdown(args.output, sargs, saved["machine"], saved["loads"], saved["names"],
                       servers, saved.get("notes", []), argv, saved.get("timers", []))
        log(f"wrote {args.output}")
        return
    if args.quick:
        args.reps, args.duration = 1, 2.0
        if args.loads == ap.get_default("loads"):
            args.loads = "20x200k,20x4m,1x200k"
        if args.names_sizes == ap.get_default("names_sizes"):
            args.names_sizes = "100000"

    workdir = tempfile.mkdtemp(prefix="statsd-bench-")
    os.chmod(workdir, 0o755)  # the servers' user reads its config there
    RUN_AS["user"] = args.user
    wanted = [s.strip() for s in args.servers.split(",") if s.strip()]
    notes = []
    servers = []
    if "ours" in wanted:
        ours = Ours(Path(args.ours_bin), ["--udp-buffer", str(args.udp_buffer)] + args.ours_args.split())
        if check_ours(ours, args.bench_bin, workdir):
            servers.append(ours)
        else:
            notes.append("Our server is not measured: the binary on this branch did not run as a server "
                         "(the core daemon had not landed yet). Etsy's figures only.")
    if "etsy" in wanted:
        servers.append(Etsy(Path(args.etsy)))
    if "collectd" in wanted:
        servers.append(Collectd())
    if "floor" in wanted:
        servers.append(Floor(Path(args.floor_bin)))
    if not servers:
        sys.exit("no server to measure")

    mach = machine()
    log(f"machine: {mach}")
    loads = parse_loads(args.loads)
    load_results, name_results = [], []
    for rep in range(args.reps):
        for rate, lpd in loads:
            for srv in servers:
                log(f"rep {rep + 1}/{args.reps}: {srv.name} at {load_label(rate, lpd)}")
                try:
                    r = measure_load(srv, args.bench_bin, rate, lpd, args.duration,
                                     args.flush_interval, workdir,
                                     (args.quiet_cores, args.quiet_wait))
                except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
                    r = {"server": srv.name, "rate": rate, "lpd": lpd, "error": str(e)}
                    log(f"  failed: {e}")
                r["rep"] = rep
                load_results.append(r)
                if "error" not in r:
                    log(f"  offered {r['offered']:,} at {r['offered_rate']:,.0f}/s, counted {r['counted']:,}, "
                        f"others {r['other_cores']:.2f} cores, "
                        f"loss {r['loss_pct']:.1f} %, {fmt(r['ns_per_line'], ',.0f')} ns/line, "
                        f"HWM {r['hwm_kib'] / 1024:.1f} MiB, drops {r['kernel_drops']:,}, "
                        f"bench {r['bench_cpu_ns_per_line']:.0f} ns/line, drained={r['drained']}")
    if not args.no_names:
        names_wanted = {x.strip() for x in args.names_servers.split(",")}
        for n in [int(x) for x in args.names_sizes.split(",") if x]:
            for srv in servers:
                if srv.self_counting or srv.name not in names_wanted:
                    continue
                log(f"{srv.name} with {n:,} names")
                try:
                    r = measure_names(srv, args.bench_bin, n, args.names_flush_interval, workdir)
                    log(f"  {r}")
                except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
                    r = {"server": srv.name, "names": n, "error": str(e)}
                    log(f"  failed: {e}")
                name_results.append(r)

    timer_results = []
    if not args.no_timers:
        timers_wanted = {x.strip() for x in args.timers_servers.split(",")}
        for rep in range(min(args.reps, 2)):
            for srv in servers:
                if srv.self_counting or srv.name not in timers_wanted:
                    continue
                log(f"rep {rep + 1}: {srv.name} with {TIMER_NAMES:,} timers x {TIMER_SAMPLES} samples")
                try:
                    r = measure_timers(srv, args.bench_bin, args.names_flush_interval, workdir,
                                       (args.quiet_cores, args.quiet_wait))
                    log(f"  {r}")
                except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
                    r = {"server": srv.name, "error": str(e)}
                    log(f"  failed: {e}")
                timer_results.append(r)

    out = ROOT / "target/bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(
        {"machine": mach, "args": vars(args), "notes": notes, "loads": load_results, "names": name_results,
         "timers": timer_results}, indent=1))
    write_markdown(args.output, args, mach, load_results, name_results, servers, notes,
                   args.argv.split() if args.argv is not None else sys.argv[1:], timer_results)
    log(f"wrote {args.output} and {out / 'results.json'}")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
