#!/usr/bin/env python3
"""Runs bench/proxy.sh's measurements (see there). One proxy at a time."""
from pathlib import Path
import argparse, json, os, socket, subprocess, sys, tempfile, time

REL = "target/release"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def udp_drops(ports):
    """Datagrams the kernel dropped on sockets bound to `ports` (/proc/net/udp)."""
    wanted = {f":{p:04X}" for p in ports}
    total = 0
    with open("/proc/net/udp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if any(fields[1].endswith(w) for w in wanted):
                total += int(fields[-1])
    return total


class Sink:
    def __init__(self):
        self.p = subprocess.Popen([f"{REL}/proxy-sink", "--nodes", "3"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        self.nodes = json.loads(self.p.stdout.readline())["nodes"]

    def lines(self):
        self.p.stdin.write("report\n")
        self.p.stdin.flush()
        return sum(json.loads(self.p.stdout.readline())["lines"])

    def settle(self, limit=10.0):
        """Lines once the count stops moving (bounded)."""
        last, deadline = -1, time.time() + limit
        while time.time() < deadline:
            now = self.lines()
            if now == last:
                return now
            last = now
            time.sleep(0.3)
        return last

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=5)


def start_ours(nodes, port, extra):
    spec = ",".join(f"127.0.0.1:{p}:{m}" for p, m in nodes)
    return subprocess.Popen([f"{REL}/statsd", "-n", "127.0.0.1", "-p", str(port), "--no-monitor",
                             "--console", "-q", "--flush-interval", "3600", "--proxy", spec] + extra,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_etsy(nodes, port, script, tmp):
    cfg = os.path.join(tmp, "proxyConfig.js")
    node_list = ", ".join(f"{{host: '127.0.0.1', port: {p}, adminport: {m}}}" for p, m in nodes)
    with open(cfg, "w") as f:
        f.write(f"{{nodes: [{node_list}], address: '127.0.0.1', port: {port}, mgmt_address: '127.0.0.1', "
                f"mgmt_port: {free_port()}, forkCount: 0, checkInterval: 1000, cacheSize: 10000}}")
    return subprocess.Popen(["node", script, cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_ready(sink, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    deadline = time.time() + 20
    while time.time() < deadline:
        s.sendto(b"probe:1|c", ("127.0.0.1", port))
        time.sleep(0.05)
        if sink.lines() > 0:
            time.sleep(0.3)
            return
    raise SystemExit("proxy never forwarded a line")


def run(kind, rate, args, tmp):
    sink = Sink()
    port = free_port()
    proc = (start_ours(sink.nodes, port, args.ours_args.split()) if kind == "ours"
            else start_etsy(sink.nodes, port, args.proxy_js, tmp))
    try:
        wait_ready(sink, port)
        before = sink.settle()
        sink_ports = [p for p, _ in sink.nodes]
        drops0 = (udp_drops([port]), udp_drops(sink_ports))
        cpu0 = cpu_seconds(proc.pid)
        out = subprocess.run([f"{REL}/statsd-bench", "--target", f"127.0.0.1:{port}", "--rate", str(int(rate)),
                              "--duration", str(args.duration), "--lines-per-datagram", str(args.lines_per_datagram),
                              "--names", "10000", "--max-duration", "60"],
                             capture_output=True, text=True, timeout=120, check=True)
        sent = json.loads(out.stdout)
        delivered = sink.settle() - before
        cpu = cpu_seconds(proc.pid) - cpu0
        drops = (udp_drops([port]) - drops0[0], udp_drops(sink_ports) - drops0[1])
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        sink.close()
    lines, elapsed = sent["lines"], sent["elapsed_s"]
    return {"proxy": kind, "offered": rate, "sent": lines, "delivered": delivered,
            "lost": lines - delivered, "delivered_per_s": delivered / elapsed,
            "cpu_s": cpu, "cpu_us_per_line": cpu * 1e6 / max(delivered, 1),
            "proxy_drops": drops[0], "sink_drops": drops[1], "load": os.getloadavg()[0]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--proxy-js", required=True)
    ap.add_argument("--ours", default="1e6,2e6,3e6")
    ap.add_argument("--etsy", default="20e3,40e3,80e3")
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--lines-per-datagram", type=int, default=20)
    ap.add_argument("--ours-args", default="")
    ap.add_argument("--output", default=str(Path(__file__).resolve().parent.parent / "BENCHMARKS.md"))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind, rates in (("ours", args.ours), ("etsy", args.etsy)):
            for rate in [float(r) for r in rates.split(",") if r]:
                row = run(kind, rate, args, tmp)
                print(json.dumps(row), file=sys.stderr)
                rows.append(row)
    write_section(args, rows)


MARK = "<!-- written by bench/proxy.sh -->"


def write_section(args, rows):
    """Replaces the proxy section of --output (from MARK to the end) with this run."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip() or "unknown"
    node = subprocess.run(["node", "--version"], capture_output=True, text=True,
                          check=False).stdout.strip()
    L = [MARK, "## Proxy: `statsd --proxy` against Etsy's proxy.js", "",
         "Each proxy in front of three counting fake aggregators (`proxy-sink`, answering",
         "`health: up`), loaded by `statsd-bench`; delivered = lines the three sinks counted;",
         "CPU = the proxy process's user+system time per delivered line; drops = the kernel's",
         "drop counters of the proxy's and the sinks' UDP sockets. Load average is the",
         "machine's during the run: above the core count, loss measures the scheduler.", "",
         f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; commit `{commit}`; "
         f"{os.cpu_count()} cores; node {node}",
         f"- Command: `bench/proxy.sh {' '.join(sys.argv[1:])}`", "",
         f"statsd-bench --lines-per-datagram {args.lines_per_datagram} --names 10000, "
         f"{args.duration:g} s per run, 3 nodes (proxy-sink)", "",
         "| proxy | offered lines/s | sent | delivered | lost | delivered lines/s | proxy CPU µs/line "
         "| datagrams dropped by the kernel: proxy / sinks | load avg |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        name = "statsd --proxy" if r["proxy"] == "ours" else "Etsy proxy.js"
        offered = f"{r['offered']:,.0f}" if r["offered"] else "max"
        L.append(f"| {name} | {offered} | {r['sent']:,} | {r['delivered']:,} | {r['lost']:,} "
                 f"| {r['delivered_per_s']:,.0f} | {r['cpu_us_per_line']:.3f} "
                 f"| {r['proxy_drops']:,} / {r['sink_drops']:,} | {r['load']:.1f} |")
    text = "\n".join(L) + "\n"
    print(text)
    out = Path(args.output)
    previous = out.read_text() if out.exists() else ""
    head = previous[:previous.find(MARK)] if MARK in previous else previous
    out.write_text(head.rstrip("\n") + "\n\n" + text)


if __name__ == "__main__":
    main()
