#!/usr/bin/env python3
"""Soak test body, run by scripts/soak.sh after it has built the release binaries.

    python3 scripts/soak.py MINUTES BINDIR WORKDIR BENCH_RATE FEATURE_RATE

Runs BINDIR/statsd against a flapping fake carbon under BINDIR/statsd-bench at
BENCH_RATE lines/s plus a feature sender at FEATURE_RATE datagrams/s, for MINUTES,
keeping logs in WORKDIR; then prints the report (SOAK.md). Exits 1 when a check
fails. Loopback only, every loop bounded by a deadline.
"""
import argparse
import json
import multiprocessing as mp
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time


def _args():
    ap = argparse.ArgumentParser(
        description="Soak test of the real statsd (normally started by scripts/soak.sh).")
    ap.add_argument("minutes", type=float, help="how long the load runs")
    ap.add_argument("bindir", help="directory holding the statsd and statsd-bench binaries")
    ap.add_argument("workdir", help="where logs and the carbon capture are kept")
    ap.add_argument("bench_rate", type=int, help="statsd-bench lines per second")
    ap.add_argument("feature_rate", type=int, help="feature sender datagrams per second")
    return ap.parse_args()


# Module constants, as the forked helpers read them.
_ARGS = _args()
MINUTES = _ARGS.minutes
BINDIR, WORKDIR = _ARGS.bindir, _ARGS.workdir
BENCH_RATE, RATE = _ARGS.bench_rate, _ARGS.feature_rate
BENCH_NAMES = 4000   # a quarter of each type
FLUSH = 2            # seconds; a power of two, so value x interval is exact in floats
UP, DOWN = 20.0, 10.0  # carbon flapping
RESET_FOR, STALL_FOR = 10.0, 10.0  # carbon misbehaving while it accepts
# Carbon's phases, in a loop until the load ends (then it stays up): refusing
# (down), resetting every connection mid-payload, accepting and never reading
# (stall). An up phase always comes between two bad ones, so each bad phase
# holds the backlog for about as long as the one before: RSS can stay flat.
PHASES = [("up", UP), ("down", DOWN), ("up", UP), ("reset", RESET_FOR),
          ("up", UP), ("stall", STALL_FOR)]
RESET_AFTER = (1000, 300000)  # bytes read before the reset, uniformly drawn
WRITE_TIMEOUT = 5    # --graphite-write-timeout: a stalled attempt gives up after this
SAMPLE = 10.0        # RSS sampling period
WARMUP = 60.0        # RSS samples before this (or a fifth of the run) are not judged
RSS_SLACK = 0.20     # last quarter's max may exceed the first quarter's by this much
POOL = 2000          # distinct datagrams cycled by the sender


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- load shape
# Every datagram has the same counter and timer content (values aside), so a
# datagram the kernel dropped loses a known number of units of each series.
COUNTERS = [(f"soak.c{i}", i + 1, 1.0) for i in range(7)] + [("soak.c7", 3, 0.5)]
TIMERS = [(f"soak.t{i}", 1.0 if i < 3 else 0.25) for i in range(4)]


def datagram(n):
    lines = [f"{name}:{value}|c" + ("" if rate == 1 else f"|@{rate}") for name, value, rate in COUNTERS]
    lines += [f"soak.g{i}:{(n * 7 + i) % 1000}|g" for i in range(3)]
    lines.append(f"soak.gdelta:{'+' if n % 2 else '-'}1|g")
    lines += [f"{name}:{(n * 13 + i * 101) % 5000 / 10}|ms" + ("" if rate == 1 else f"|@{rate}")
              for i, (name, rate) in enumerate(TIMERS)]
    lines += [f"soak.s0:user{n % 500}|s", f"soak.s1:{n}|s"]
    lines.append("soak.multi:1|c:5|ms")            # one line, two values
    lines.append("soak.tagged:3|c|#host:a,env:soak")
    lines.append(f"soak.churn.k{n % 200}:1|c")     # 200 names, gone every flush
    lines.append("soak.bad:1|x")                   # discarded by design
    return ("\n".join(lines) + "\n").encode()


LINES_PER_DGRAM = datagram(0).count(b"\n")  # statsd-bench is given the same
BAD_PER_DGRAM = 1
# Units per datagram that carbon should see, by Graphite path (or path prefix).
UNITS = {f"stats.{name}": value / rate for name, value, rate in COUNTERS}
UNITS["stats.soak.multi"] = 1
UNITS["stats.soak.tagged;env=soak;host=a"] = 3
UNITS["stats.soak.churn.*"] = 1
TIMER_COUNTS = {f"stats.timers.{name}.count": 1 / rate for name, rate in TIMERS}
TIMER_COUNTS["stats.timers.soak.multi.count"] = 1


def sender(go, result):
    """Sends the pool round-robin at `rate` datagrams/s until the deadline.

    Forked before any socket exists and told the port later: a child forked after
    carbon's listening socket was opened would hold it open across an outage."""
    pool = [datagram(n) for n in range(POOL)]
    if not go.poll(60):
        return
    port, seconds, rate = go.recv()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    addr = ("127.0.0.1", port)
    start = time.monotonic()
    deadline = start + seconds
    sent = failed = 0
    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        burst = min(int((now - start) * rate) - sent - failed, 500)
        if burst <= 0:
            time.sleep(0.002)
            continue
        for _ in range(burst):
            try:
                sock.sendto(pool[(sent + failed) % POOL], addr)
                sent += 1
            except OSError:
                failed += 1
    result.send((sent, failed, time.monotonic() - start))


# ---------------------------------------------------------------- fake carbon
class Carbon(threading.Thread):
    """Plaintext receiver on loopback going through PHASES until `steady`.

    Up: reads each connection to the end and closes in order (carbon's
    confirmation). Down: the port refuses (queued, unaccepted connections are
    reset). Reset: reads RESET_AFTER bytes, keeps the complete lines read (a
    real carbon would have stored them) and closes with RST. Stall: accepts,
    never reads; the connections are closed unread when the phase ends."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.lock = threading.Lock()
        self.lines = []          # complete lines, in arrival order
        self.confirmed = 0       # lines on connections read to the end and closed in order
        self.connections = 0     # accepted, in any phase
        self.outages = 0
        self.resets = 0
        self.stalls = 0          # connections accepted and never read
        self.stalled = []
        self.rng = random.Random(12)
        self.steady = threading.Event()   # stay up from now on
        self.stop = threading.Event()
        self.readers = []

    def keep(self, buf, confirmed):
        # A line cut by a broken connection is not a line (carbon drops it too).
        complete = buf[: buf.rfind(b"\n") + 1].decode(errors="replace").splitlines()
        with self.lock:
            self.lines.extend(complete)
            if confirmed:
                self.confirmed += len(complete)

    def read(self, conn):
        conn.settimeout(60)
        buf = b""
        confirmed = False
        try:
            while True:
                chunk = conn.recv(1 << 16)
                if not chunk:
                    confirmed = True
                    break
                buf += chunk
        except OSError:
            pass
        finally:
            conn.close()
        self.keep(buf, confirmed)

    def read_then_reset(self, conn, after):
        conn.settimeout(60)
        buf = b""
        try:
            while len(buf) < after:
                chunk = conn.recv(min(1 << 16, after - len(buf)))
                if not chunk:
                    break
                buf += chunk
        except OSError:
            pass
        finally:
            try:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            conn.close()
        with self.lock:
            self.resets += 1
        self.keep(buf, False)

    def release_stalled(self):
        for conn in self.stalled:
            conn.close()
        self.stalled = []

    def run(self):
        lsock = None
        phase = 0
        while not self.stop.is_set():
            if self.steady.is_set():
                kind, length = "up", 0.2
            else:
                kind, length = PHASES[phase % len(PHASES)]
                phase += 1
            if kind != "stall":
                self.release_stalled()
            if kind == "down":
                if lsock is not None:
                    lsock.close()  # queued, unaccepted connections are reset: a failed publish
                    lsock = None
                self.outages += 1
                until = time.monotonic() + length
                while not self.stop.is_set() and not self.steady.is_set() and time.monotonic() < until:
                    time.sleep(0.1)
                continue
            if lsock is None:
                lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                lsock.bind(("127.0.0.1", self.port))
                lsock.listen(64)
                lsock.settimeout(0.2)
            until = time.monotonic() + length
            while not self.stop.is_set() and time.monotonic() < until:
                if kind != "up" and self.steady.is_set():
                    break
                try:
                    conn, _ = lsock.accept()
                except socket.timeout:
                    continue
                self.connections += 1
                if kind == "stall":
                    self.stalls += 1
                    self.stalled.append(conn)
                    continue
                if kind == "reset":
                    after = self.rng.randint(*RESET_AFTER)
                    reader = threading.Thread(target=self.read_then_reset, args=(conn, after), daemon=True)
                else:
                    reader = threading.Thread(target=self.read, args=(conn,), daemon=True)
                reader.start()
                self.readers.append(reader)
        self.release_stalled()
        if lsock is not None:
            lsock.close()

    def finish(self):
        self.stop.set()
        self.join(5)
        for reader in self.readers:
            reader.join(5)

    def snapshot(self):
        with self.lock:
            return list(self.lines)


def free_port():
    """A port free for UDP and TCP on loopback (and, for carbon, for TCP)."""
    for _ in range(100):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise SystemExit("no free port")


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def latest_meta(lines, key):
    """Value of statsd.<key> in the latest flush that carbon received."""
    best = None
    for line in lines:
        parts = line.split(" ")
        if len(parts) == 3 and parts[0] == f"statsd.{key}":
            ts = int(parts[2])
            if best is None or ts >= best[0]:
                best = (ts, float(parts[1]))
    return None if best is None else best[1]


def main():
    duration = MINUTES * 60
    go_recv, go_send = mp.Pipe(duplex=False)
    recv_end, send_end = mp.Pipe(duplex=False)
    load = mp.Process(target=sender, args=(go_recv, send_end))
    load.start()
    statsd_port, carbon_port = free_port(), free_port()
    carbon = Carbon(carbon_port)
    carbon.start()

    out = open(os.path.join(WORKDIR, "statsd.stdout"), "w")
    err_path = os.path.join(WORKDIR, "statsd.stderr")
    err = open(err_path, "w")
    daemon = subprocess.Popen(
        [os.path.join(BINDIR, "statsd"), "-n", "127.0.0.1", "-p", str(statsd_port), "--no-monitor", "-q",
         "--graphite-host", "127.0.0.1", "--graphite-port", str(carbon_port),
         "--flush-interval", str(FLUSH), "--graphite-write-timeout", str(WRITE_TIMEOUT)],
        stdout=out, stderr=err)
    deadline = time.monotonic() + 15
    while "listening" not in open(err_path).read():
        if daemon.poll() is not None or time.monotonic() > deadline:
            daemon.kill()
            load.kill()
            print(open(err_path).read(), file=sys.stderr)
            raise SystemExit(2)
        time.sleep(0.1)
    log(f"statsd pid {daemon.pid} on udp {statsd_port}, carbon on {carbon_port}; load "
        f"statsd-bench {BENCH_RATE} lines/s + {RATE} feature datagrams/s, for {MINUTES:g} min")

    bench_out = open(os.path.join(WORKDIR, "statsd-bench.json"), "w+")
    bench = subprocess.Popen(
        [os.path.join(BINDIR, "statsd-bench"), "--target", f"127.0.0.1:{statsd_port}",
         "--rate", str(BENCH_RATE), "--duration", str(duration),
         "--max-duration", str(duration + 5), "--lines-per-datagram", str(LINES_PER_DGRAM),
         "--names", str(BENCH_NAMES), "--types", "c,g,ms,s", "--prefix", "soak.bench"],
        stdout=bench_out, stderr=err)
    started = time.monotonic()
    go_send.send((statsd_port, duration, RATE))

    samples = []  # (seconds since start, VmRSS KiB)
    next_sample = started
    next_report = started + 60
    while time.monotonic() < started + duration:
        now = time.monotonic()
        if now >= next_sample:
            kib = rss_kib(daemon.pid)
            if kib is not None:
                samples.append((now - started, kib))
            next_sample += SAMPLE
        if now >= next_report:
            log(f"{(now - started) / 60:.0f} min: RSS {samples[-1][1] / 1024:.1f} MiB, "
                f"carbon outages {carbon.outages}, resets {carbon.resets}, stalled connections "
                f"{carbon.stalls}, lines at carbon {len(carbon.lines)}")
            next_report += 60
        if daemon.poll() is not None:
            log("statsd exited during the load")
            break
        time.sleep(max(0.0, min(next_sample, started + duration) - time.monotonic()))

    sent = failed = 0
    if recv_end.poll(60):
        sent, failed, took = recv_end.recv()
    load.join(10)
    if load.is_alive():
        load.kill()
    try:
        bench.wait(30)
        bench_out.seek(0)
        bench_report = json.loads(bench_out.read())
    except (subprocess.TimeoutExpired, ValueError):
        bench.kill()
        bench_report = None
    log(f"load done: {sent} feature datagrams sent, {failed} send errors; statsd-bench: "
        f"{bench_report and bench_report['lines']} lines")

    # Carbon stays up; let the backlog drain (bounded), then stop the daemon.
    carbon.steady.set()
    load_end_wall = time.time()
    drain_deadline = time.monotonic() + 120
    drained = False
    while time.monotonic() < drain_deadline and daemon.poll() is None:
        lines = carbon.snapshot()
        newest = max((int(l.split(" ")[2]) for l in lines
                      if l.startswith("statsd.backlog.lines ")), default=0)
        if newest > load_end_wall + 2 * FLUSH and latest_meta(lines, "backlog.lines") == 0:
            drained = True
            break
        time.sleep(0.5)
    kib = rss_kib(daemon.pid)
    if kib is not None:
        samples.append((time.monotonic() - started, kib))

    exit_code = None
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
        try:
            exit_code = daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            exit_code = "killed after 30 s"
    else:
        exit_code = daemon.returncode
    time.sleep(0.5)
    carbon.finish()
    report(carbon, samples, sent, failed, bench_report, exit_code, drained)


def report(carbon, samples, sent, failed, bench, exit_code, drained):
    lines = carbon.snapshot()
    with open(os.path.join(WORKDIR, "carbon.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(WORKDIR, "rss.tsv"), "w") as f:
        f.writelines(f"{t:.0f}\t{k}\n" for t, k in samples)
    failures = []

    # Whisper keeps one value per (path, timestamp), the last one written: a
    # payload resent after a cut connection counts once. The final flush at
    # SIGTERM may fall in the same second as the one before; its statsd.* lines
    # then replace that flush's (no metric lines: the load had stopped). Any
    # other (path, timestamp) with two values would lose data.
    points, repeats, replaced, conflicts, malformed = {}, 0, 0, 0, 0
    for line in lines:
        parts = line.split(" ")
        if len(parts) != 3:
            malformed += 1
            continue
        key, value = (parts[0], int(parts[2])), float(parts[1])
        if key in points:
            if points[key] == value:
                repeats += 1
            elif parts[0].startswith("statsd."):
                replaced += 1
            else:
                conflicts += 1
        points[key] = value
    flushes = sorted({ts for (path, ts) in points if path == "statsd.numStats"})
    per_ts = {}
    for (path, ts) in points:
        per_ts[ts] = per_ts.get(ts, 0) + 1
    # Every flush arrived whole: numStats counts its lines. (A same-second final
    # flush makes that second's count ambiguous; it is left out.)
    incomplete = [ts for ts in flushes
                  if points[("statsd.numStats", ts)] != per_ts[ts] and not (replaced and ts == flushes[-1])]

    meta = {k: latest_meta(lines, k) for k in (
        "metrics.received", "metrics.discarded", "metrics.names_refused",
        "udp.kernel_drops", "backlog.dropped_lines", "packets.received",
        "flush_errors", "publish_error.socket", "published.lines")}
    missing = [k for k, v in meta.items() if v is None]
    if missing:
        failures.append(f"stats missing at carbon: {missing}")
        meta = {k: (v or 0) for k, v in meta.items()}
    kdrops = int(meta["udp.kernel_drops"])
    if bench is None:
        failures.append("statsd-bench gave no report")
        bench = {"lines": 0, "datagrams": 0, "counter_sum": 0, "send_errors": 0,
                 "by_type": {}}
    b_dgrams, b_lines = bench["datagrams"], bench["lines"]
    if b_lines != b_dgrams * LINES_PER_DGRAM:
        failures.append(f"statsd-bench sent {b_lines} lines in {b_dgrams} datagrams, "
                        f"not {LINES_PER_DGRAM} each: kernel drops cannot be turned into lines")
    dgrams_sent = sent + b_dgrams

    # Lines: every line sent is accepted, discarded, refused, or in a dropped
    # datagram (all datagrams hold LINES_PER_DGRAM lines).
    lines_sent = sent * LINES_PER_DGRAM + b_lines
    lines_accounted = (meta["metrics.received"] + meta["metrics.discarded"]
                       + meta["metrics.names_refused"] + kdrops * LINES_PER_DGRAM)
    lines_ok = lines_accounted == lines_sent
    if not lines_ok:
        failures.append(f"lines: sent {lines_sent}, accounted {lines_accounted:.0f}")
    if meta["packets.received"] != dgrams_sent - kdrops:
        failures.append(f"datagrams: sent {dgrams_sent} - kernel drops {kdrops} != "
                        f"received {meta['packets.received']:.0f}")
    # Only the feature datagrams carry a bad line; a dropped one may be either kind.
    bad = meta["metrics.discarded"]
    if not (sent - kdrops) * BAD_PER_DGRAM <= bad <= sent * BAD_PER_DGRAM:
        failures.append(f"discarded {bad:.0f}, expected {sent * BAD_PER_DGRAM} less at most "
                        f"{kdrops} (one bad line per feature datagram)")

    # Units at carbon: counters are the sum over flushes of value x interval;
    # timer .count lines are units already. Which kind of datagram the kernel
    # dropped is unknown, so with drops each series may lack up to kdrops x its
    # units per datagram; with no drops (nor names refused, nor output dropped)
    # it is exact.
    def total(prefix, suffix, scale):
        return sum(v * scale for (p, _), v in points.items()
                   if (p == prefix if suffix is None else p.startswith(prefix) and p.endswith(suffix)))

    by_type = bench.get("by_type", {})
    # (series shown, path prefix, path suffix or None for an exact path, units sent,
    #  units per datagram, scale)
    series_list = [(name, name[:-1], "", per * sent, per, FLUSH) if name.endswith("*")
                   else (name, name, None, per * sent, per, FLUSH) for name, per in UNITS.items()]
    series_list += [(name, name, None, per * sent, per, 1) for name, per in TIMER_COUNTS.items()]
    series_list.append(("stats.soak.bench.c.*", "stats.soak.bench.c.", "", bench["counter_sum"],
                        LINES_PER_DGRAM * bench.get("counter_value", 1), FLUSH))
    series_list.append(("stats.timers.soak.bench.ms.*.count", "stats.timers.soak.bench.ms.",
                        ".count", by_type.get("ms", {}).get("lines", 0), LINES_PER_DGRAM, 1))
    exact = meta["backlog.dropped_lines"] == 0 and meta["metrics.names_refused"] == 0
    rows = []
    for series, prefix, suffix, sent_units, per_dgram, scale in series_list:
        got = total(prefix, suffix, scale)
        if exact and kdrops == 0:
            ok = got == sent_units
        elif exact:
            ok = sent_units - kdrops * per_dgram <= got <= sent_units
        else:
            ok = got <= sent_units
        rows.append((series, sent_units, got, ok))
        if not ok:
            failures.append(f"{series}: carbon has {got:.0f}, sent {sent_units:.0f}")
    if conflicts:
        failures.append(f"{conflicts} (path, timestamp) points with two different values")
    if malformed:
        failures.append(f"{malformed} malformed lines at carbon")
    if incomplete:
        failures.append(f"{len(incomplete)} flushes incomplete at carbon (numStats mismatch)")
    # "Published" means carbon read it: the lines the final flush says were
    # delivered before it, plus its own, are the lines carbon read on
    # connections it read to the end and closed in order (not those it reset
    # or left unread). A regular flush still in flight when the final one was
    # rendered is carbon's but not yet in the count: allowed, exactly.
    published = meta["published.lines"]
    confirmed = carbon.confirmed
    final_lines = points.get(("statsd.numStats", flushes[-1]), 0) if flushes else 0
    before_final = points.get(("statsd.numStats", flushes[-2]), 0) if len(flushes) > 1 else 0
    unbooked = confirmed - final_lines - published
    published_ok = unbooked == 0 or unbooked == before_final
    if not published_ok:
        failures.append(f"published.lines {published:.0f} + the final flush's {final_lines:.0f} lines "
                        f"!= {confirmed} lines carbon confirmed by closing in order")
    # Every kind of bad phase that began during the load was met by attempts.
    began, at = set(), 0.0
    for kind, length in PHASES * int(MINUTES * 60 / sum(t for _, t in PHASES) + 1):
        if at < MINUTES * 60:
            began.add(kind)
        at += length
    seen = {"down": carbon.outages, "reset": carbon.resets, "stall": carbon.stalls}
    missed = [kind for kind, n in seen.items() if kind in began and n == 0]
    if missed:
        failures.append(f"no publish met these carbon phases: {missed} ({carbon.outages} outages, "
                        f"{carbon.resets} resets, {carbon.stalls} stalled connections)")
    if exit_code != 0:
        failures.append(f"statsd exit status {exit_code}")
    if not drained:
        failures.append("backlog did not drain within 120 s after the load")

    # RSS: flat after warm-up.
    warmup = min(WARMUP, MINUTES * 60 / 5)
    judged = [(t, k) for t, k in samples if t >= warmup] or samples
    if len(judged) >= 4:
        quarter = max(1, len(judged) // 4)
        first_max = max(k for _, k in judged[:quarter])
        last_max = max(k for _, k in judged[-quarter:])
        growth = last_max / first_max - 1
        if growth > RSS_SLACK:
            failures.append(f"RSS grew {growth:.0%} (last quarter max {last_max} KiB "
                            f"vs first quarter max {first_max} KiB)")
    else:
        first_max = last_max = growth = None
        failures.append("too few RSS samples")

    mib = lambda k: f"{k / 1024:.1f} MiB"
    print("## Soak report")
    print()
    print(f"- duration {MINUTES:g} min, flush interval {FLUSH} s, --graphite-write-timeout {WRITE_TIMEOUT} s; "
          f"carbon phases " + ", ".join(f"{k} {t:g} s" for k, t in PHASES)
          + f", in a loop ({carbon.outages} outages, {carbon.resets} connections reset after "
          f"{RESET_AFTER[0]}-{RESET_AFTER[1]} bytes, {carbon.stalls} connections accepted and never read, "
          f"{carbon.connections} connections accepted in all)")
    secs = MINUTES * 60
    print(f"- load: statsd-bench {b_lines} lines ({b_lines / secs:.0f}/s) in {b_dgrams} datagrams, "
          f"{bench['send_errors']} send errors; feature sender {sent} datagrams ({sent / secs:.0f}/s) "
          f"x {LINES_PER_DGRAM} lines, {failed} send errors; {lines_sent} lines in all")
    print(f"- daemon stats at the last flush: received {meta['metrics.received']:.0f}, "
          f"discarded {meta['metrics.discarded']:.0f}, names_refused {meta['metrics.names_refused']:.0f}, "
          f"udp.kernel_drops {kdrops}, backlog.dropped_lines {meta['backlog.dropped_lines']:.0f}, "
          f"flush_errors {meta['flush_errors']:.0f}, publish_error.socket {meta['publish_error.socket']:.0f}")
    print(f"- line accounting: sent {lines_sent} = received + discarded + names_refused + "
          f"kernel_drops x {LINES_PER_DGRAM} = {lines_accounted:.0f}: {'yes' if lines_ok else 'NO'}")
    print(f"- published: published.lines {published:.0f} at the final flush + its {final_lines:.0f} lines "
          + (f"+ the {before_final:.0f} of the flush in flight " if unbooked and published_ok else "")
          + f"= {confirmed} lines carbon read on connections it closed in order: "
          f"{'yes' if published_ok else 'NO'}")
    print(f"- carbon: {len(lines)} lines, {len(points)} distinct points, {len(flushes)} flushes, "
          f"{repeats} repeated points (same path, second and value: a resend, or the final flush "
          f"in the same second as the one before), {replaced} statsd.* points given a new value by that "
          f"final flush, {conflicts} conflicting metric points, {len(incomplete)} incomplete flushes")
    if samples:
        print(f"- RSS (VmRSS, every {SAMPLE:g} s, {len(samples)} samples): first {mib(samples[0][1])}, "
              f"max {mib(max(k for _, k in samples))}, last {mib(samples[-1][1])}"
              + ("" if growth is None else
                 f"; after {warmup:g} s warm-up: first-quarter max {mib(first_max)}, "
                 f"last-quarter max {mib(last_max)} ({growth:+.1%}, limit +{RSS_SLACK:.0%})"))
    print(f"- statsd exit status: {exit_code}")
    print()
    how = ("exact" if exact and kdrops == 0 else
           "within kernel drops x units per datagram" if exact else "upper bound: output was dropped")
    print(f"Counter units and timer counts sent vs at carbon ({how}):")
    print()
    print("| series | sent | at carbon | ok |")
    print("|---|---:|---:|---|")
    for series, s, g, ok in rows:
        print(f"| `{series}` | {s:.0f} | {g:.0f} | {'yes' if ok else 'NO'} |")
    print()
    if failures:
        print("FAILED:")
        for f in failures:
            print(f"- {f}")
        sys.exit(1)
    print("PASSED")


if __name__ == "__main__":
    mp.set_start_method("fork")
    main()
