"""The tables and plots of bench/run: the full table, the headline table,
lpc's tables (throughput, pipelining, connections, streams, CPU) and the
gnuplot plots. bench/run imports this module.
"""

import os
import shutil
import subprocess
import sys

from bench_targets import kind

BASELINE_SPIN = "shm-spin"
BASELINE_SPIN_SAME_CORE = "shm-spin-yield"
BASELINE_FUTEX = "futex"
# Plain gRPC: the peer lpc's gRPC-free path is compared with.
BASELINE_GRPC = "grpc-sync-unix"


def human_size(n):
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return "%d %s" % (n // size, unit)
    return "%d B" % n


def fmt(v, digits=2):
    if v is None:
        return "-"
    if v >= 1000:
        return "%.0f" % v
    if v >= 100:
        return "%.1f" % v
    return "%.*f" % (digits, v)


def fmt_ratio(v):
    if v is None:
        return "-"
    if v < 1:
        return "%.2g" % v
    if v < 100:
        return "%.1f" % v
    return "%.0f" % v


def render_table(header, lines, aligned=False):
    """A Markdown table of `header` and the rows of cells in `lines`.
    aligned: every column padded to its widest cell, the first three
    left-aligned and the rest right-aligned (the full table); otherwise
    cells as they are."""
    if not aligned:
        out = ["| " + " | ".join(header) + " |",
               "|" + "|".join("---" for _ in header) + "|"]
        return "\n".join(out + ["| " + " | ".join(l) + " |" for l in lines])
    widths = [max(len(h), *(len(l[i]) for l in lines)) if lines else len(h)
              for i, h in enumerate(header)]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for l in lines:
        out.append("| " + " | ".join(
            (v.ljust(w) if i < 3 else v.rjust(w))
            for i, (v, w) in enumerate(zip(l, widths))) + " |")
    return "\n".join(out)


def make_table(rows):
    """Every row of the run, one line each."""
    header = ["contender", "placement", "kind", "payload", "callers",
              "samples", "p50 us", "p99 us", "p99.9 us", "calls/s", "GB/s",
              "x spin", "x futex", "vs gRPC", "srv CPU us/call",
              "p50 spread"]
    lines = []
    for r in rows:
        callers = str(r.get("callers", 1))
        if r.get("window"):
            callers = "1 (%d in flight)" % r["window"]
        cpu = r.get("server_cpu_us_per_call")
        lines.append([
            r["contender"], r["placement"], kind(r), human_size(r["payload"]),
            callers, str(r.get("samples", 0)),
            fmt(r["p50_us"]), fmt(r["p99_us"]), fmt(r["p999_us"]),
            "%.0f" % r["calls_per_s"],
            fmt(r["gbps"]) if r["payload"] >= 1024 else "-",
            fmt_ratio(r["x_spin"]),
            fmt_ratio(r["x_futex"]),
            fmt_ratio(r.get("vs_grpc")),
            fmt(cpu) if cpu is not None else "-",
            fmt_ratio(r.get("p50_spread")),
        ])
    return render_table(header, lines, aligned=True)


def headline_table(rows):
    """p50 at 64 B and 1 MiB per contender and placement, with ratios."""
    header = ["contender", "placement", "64 B p50 us", "64 B x spin",
              "64 B x futex", "64 B vs gRPC", "1 MiB p50 us", "1 MiB GB/s",
              "1 MiB x futex", "1 MiB vs gRPC"]
    by_key = {}
    for r in rows:
        if kind(r) == "latency" and r.get("callers", 1) == 1 and \
                r["placement"] in ("cross-core", "same-core"):
            by_key.setdefault((r["placement"], r["contender"]), {})[
                r["payload"]] = r
    lines = []
    order = {"cross-core": 0, "same-core": 1}
    for (placement, contender), by_payload in sorted(
            by_key.items(), key=lambda kv: (order[kv[0][0]],
                                            kv[1].get(64, {}).get("p50_us", 1e12))):
        small = by_payload.get(64)
        big = by_payload.get(1 << 20)
        lines.append([
            contender, placement,
            fmt(small["p50_us"]) if small else "-",
            fmt_ratio(small["x_spin"]) if small else "-",
            fmt_ratio(small["x_futex"]) if small else "-",
            fmt_ratio(small["vs_grpc"]) if small else "-",
            fmt(big["p50_us"]) if big else "-",
            fmt(big["gbps"]) if big else "-",
            fmt_ratio(big["x_futex"]) if big else "-",
            fmt_ratio(big["vs_grpc"]) if big else "-",
        ])
    return render_table(header, lines)


def lpc_table(rows):
    """lpc's rows beyond single-call latency: throughput, pipelining,
    connection cost, CPU per call."""
    out = []
    tput = [r for r in rows if kind(r).startswith("throughput")]
    if tput:
        out += ["Throughput, 64 B, unpinned (calls/s; p50 / p99 us; slowest "
                "caller's share of the mean; vs plain gRPC threads):", "",
                "| contender | callers as | 1 | 4 | 16 | 64 |",
                "|---|---|---|---|---|---|"]
        series = {}
        for r in tput:
            series.setdefault((r["contender"], kind(r).split("-")[1]), {})[
                r["callers"]] = r
        for (c, how), by in sorted(series.items()):
            cells = []
            for n in (1, 4, 16, 64):
                r = by.get(n)
                if not r:
                    cells.append("-")
                    continue
                cell = "%.0f (%s / %s us" % (r["calls_per_s"], fmt(r["p50_us"]),
                                             fmt(r["p99_us"]))
                if r.get("min_caller_share") is not None:
                    cell += "; %.2f" % r["min_caller_share"]
                if r.get("vs_grpc") is not None and not c.startswith("grpc"):
                    cell += "; %sx" % fmt_ratio(r["vs_grpc"])
                cells.append(cell + ")")
            out.append("| %s | %s | %s |" % (c, how, " | ".join(cells)))
        out.append("")
    piped = [r for r in rows if kind(r) == "pipelined"]
    if piped:
        out += ["Pipelined, 64 B, one client thread, async stub:", "",
                "| contender | in flight | calls/s | p50 us | p99 us | "
                "server CPU us/call | client CPU us/call |",
                "|---|---|---|---|---|---|---|"]
        for r in sorted(piped, key=lambda r: (r["contender"],
                                              r.get("window", 0))):
            out.append("| %s | %d | %.0f | %s | %s | %s | %s |" % (
                r["contender"], r.get("window", 0), r["calls_per_s"],
                fmt(r["p50_us"]), fmt(r["p99_us"]),
                fmt(r.get("server_cpu_us_per_call")),
                fmt(r.get("client_cpu_us_per_call"))))
        out.append("")
    conn = [r for r in rows if kind(r) == "connect"]
    if conn:
        out += ["Connections: new channel to its first completed 64 B call; "
                "resident memory per extra open connection:", "",
                "| contender | connect p50 us | p99 us | server RSS KiB/conn "
                "| client RSS KiB/conn | shared section KiB |",
                "|---|---|---|---|---|---|"]
        for r in sorted(conn, key=lambda r: r["contender"]):
            out.append("| %s | %s | %s | %s | %s | %s |" % (
                r["contender"], fmt(r["p50_us"]), fmt(r["p99_us"]),
                fmt(r.get("server_rss_kib_per_connection")),
                fmt(r.get("client_rss_kib_per_connection")),
                fmt(r.get("section_kib")) if r.get("section_kib") else "-"))
        out.append("")
    streams = [r for r in rows if kind(r) in ("stream-down", "stream-up")]
    if streams:
        out += stream_table(streams)
    cpu = [r for r in rows if kind(r) == "latency" and
           r.get("server_cpu_us_per_call") is not None and r["payload"] == 64]
    if cpu:
        out += ["CPU time per 64 B call, one caller (server process, client "
                "process; spinning shows up here):", "",
                "| contender | placement | p50 us | server CPU us/call | "
                "client CPU us/call |", "|---|---|---|---|---|"]
        for r in sorted(cpu, key=sort_key):
            out.append("| %s | %s | %s | %s | %s |" % (
                r["contender"], r["placement"], fmt(r["p50_us"]),
                fmt(r["server_cpu_us_per_call"]),
                fmt(r.get("client_cpu_us_per_call"))))
        out.append("")
    return "\n".join(out)


def stream_table(streams):
    """Messages per second through one stream, local against gRPC."""
    out = ["Streams: messages per second through one stream (down: server "
           "to client, up: client to server; asynchronous handlers; "
           "cross-core unless in-process):", "",
           "| direction | payload | lpc-local msg/s | lpc-grpc-unix msg/s | "
           "local vs gRPC | lpc-inprocess msg/s | gRPC MB/s |",
           "|---|---|---|---|---|---|---|"]
    by = {}
    for r in streams:
        by.setdefault((kind(r), r["payload"]), {})[r["contender"]] = r
    for (k, payload), rs in sorted(by.items()):
        local = rs.get("lpc-local")
        grpc = rs.get("lpc-grpc-unix")
        inproc = rs.get("lpc-inprocess")
        ratio = (local["calls_per_s"] / grpc["calls_per_s"]
                 if local and grpc and grpc["calls_per_s"] > 0 else None)
        out.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            k.split("-")[1], human_size(payload),
            "%.0f" % local["calls_per_s"] if local else "-",
            "%.0f" % grpc["calls_per_s"] if grpc else "-",
            fmt_ratio(ratio),
            "%.0f" % inproc["calls_per_s"] if inproc else "-",
            fmt(grpc["gbps"] * 1000) if grpc else "-"))
    out.append("")
    return out


def sort_key(r):
    order = {"cross-core": 0, "same-core": 1, "single-core": 2, "unpinned": 3}
    kinds = {"latency": 0, "pipelined": 1, "connect": 2,
             "throughput-threads": 3, "throughput-processes": 4,
             "stream-down": 5, "stream-up": 6}
    return (kinds.get(kind(r), 9), order.get(r["placement"], 9),
            r["contender"], r["payload"], r.get("callers", 1),
            r.get("window", 0))


def line_style(name):
    """lpc's series drawn thick and solid, the others thin and dashed, so
    that they stand out among gnuplot's eight repeating colours."""
    if name.startswith("lpc-"):
        return "lw 3 dt 1"
    return "lw 1 dt 2"


def plot(rows, out_dir, payloads_csv):
    gnuplot = shutil.which("gnuplot")
    if gnuplot is None:
        print("gnuplot not installed (apt-get install -y gnuplot-nox): no "
              "plots", file=sys.stderr)
        return []
    data_dir = os.path.join(out_dir, "plotdata")
    os.makedirs(data_dir, exist_ok=True)
    payloads = [int(p) for p in payloads_csv.split(",")]
    made = []
    for placement in ("cross-core", "same-core"):
        series = {}
        for r in rows:
            if r["placement"] == placement and r.get("callers", 1) == 1 \
                    and kind(r) == "latency" \
                    and r["payload"] in payloads and r["contender"] != "memcpy":
                series.setdefault(r["contender"], []).append(r)
        if not series:
            continue
        plots = []
        for name, rs in sorted(series.items()):
            path = os.path.join(data_dir, "lat-%s-%s.dat" % (placement, name))
            with open(path, "w") as f:
                for r in sorted(rs, key=lambda r: r["payload"]):
                    f.write("%d \"%s\" %g %g\n" % (
                        payloads.index(r["payload"]),
                        human_size(r["payload"]), r["p50_us"], r["p99_us"]))
            plots.append("'%s' using 1:3:xtic(2) with linespoints %s "
                         "title '%s'" % (path, line_style(name), name))
        image = os.path.join(out_dir, "latency-%s.png" % placement)
        script = "\n".join([
            "set terminal pngcairo size 1000,600 font 'sans,10'",
            "set output '%s'" % image,
            "set title 'Echo round trip p50 vs payload (%s)'" % placement,
            "set xlabel 'payload (request and reply each)'",
            "set ylabel 'p50 round trip (us, log scale)'",
            "set logscale y",
            "set format y '%g'",
            "set grid",
            "set key outside right top",
            "set xrange [-0.3:%g]" % (len(payloads) - 0.7),
            "plot " + ", \\\n     ".join(plots),
        ])
        subprocess.run([gnuplot], input=script, text=True, check=False)
        made.append(image)
    # Bandwidth vs payload, cross-core, from 1 KiB up.
    series = {}
    for r in rows:
        if r["placement"] == "cross-core" and kind(r) == "latency" and \
                r["payload"] >= 1024 and r["payload"] in payloads:
            series.setdefault(r["contender"], []).append(r)
    if series:
        plots = []
        big = [p for p in payloads if p >= 1024]
        for name, rs in sorted(series.items()):
            path = os.path.join(data_dir, "bw-%s.dat" % name)
            with open(path, "w") as f:
                for r in sorted(rs, key=lambda r: r["payload"]):
                    f.write("%d \"%s\" %g\n" % (big.index(r["payload"]),
                                               human_size(r["payload"]),
                                               r["gbps"]))
            plots.append("'%s' using 1:3:xtic(2) with linespoints %s "
                         "title '%s'" % (path, line_style(name), name))
        image = os.path.join(out_dir, "bandwidth-cross-core.png")
        script = "\n".join([
            "set terminal pngcairo size 1000,600 font 'sans,10'",
            "set output '%s'" % image,
            "set title 'Echo bandwidth vs payload (cross-core; payload bytes "
            "both ways per second)'",
            "set xlabel 'payload (request and reply each)'",
            "set ylabel 'GB/s (log scale)'",
            "set logscale y",
            "set format y '%g'",
            "set grid",
            "set key outside right top",
            "set xrange [-0.3:%g]" % (len(big) - 0.7),
            "plot " + ", \\\n     ".join(plots),
        ])
        subprocess.run([gnuplot], input=script, text=True, check=False)
        made.append(image)
    # Throughput vs callers.
    series = {}
    for r in rows:
        if kind(r).startswith("throughput"):
            name = r["contender"] + (" (processes)" if kind(r).endswith(
                "processes") else "")
            series.setdefault(name, []).append(r)
    if series:
        plots = []
        for name, rs in sorted(series.items()):
            path = os.path.join(data_dir, "tput-%s.dat" % name.replace(
                " ", "_").replace("(", "").replace(")", ""))
            with open(path, "w") as f:
                for r in sorted(rs, key=lambda r: r["callers"]):
                    f.write("%d %g %g\n" % (r["callers"], r["calls_per_s"],
                                            r["p50_us"]))
            plots.append("'%s' using 1:2 with linespoints %s title '%s'"
                         % (path, line_style(name), name))
        image = os.path.join(out_dir, "throughput-callers.png")
        script = "\n".join([
            "set terminal pngcairo size 1000,600 font 'sans,10'",
            "set output '%s'" % image,
            "set title 'Echo throughput vs concurrent callers (64 B, unpinned)'",
            "set xlabel 'concurrent callers (threads on one channel, or "
            "processes)'",
            "set ylabel 'calls per second (log scale)'",
            "set logscale x 2",
            "set logscale y",
            "set grid",
            "set key outside right top",
            "plot " + ", \\\n     ".join(plots),
        ])
        subprocess.run([gnuplot], input=script, text=True, check=False)
        made.append(image)
    made += plot_large(rows, out_dir, data_dir, gnuplot)
    return made


def plot_large(rows, out_dir, data_dir, gnuplot):
    """Bars: the p50 of the frames example's 8 MiB Invert over each
    transport, and of 16 MiB echoes cross-core (lpc-local, the zero-copy
    frame, socketpair, iceoryx-poll, memcpy), in ms."""
    picks = [("frames-local", 8 << 20), ("frames-grpc", 8 << 20),
             ("lpc-local", 16 << 20), ("lpc-local-zerocopy", 16 << 20),
             ("socketpair", 16 << 20), ("iceoryx-poll", 16 << 20),
             ("memcpy", 16 << 20)]
    bars = []
    for name, payload in picks:
        for r in rows:
            if r["contender"] == name and r["payload"] == payload and \
                    kind(r) == "latency" and r["placement"] in (
                        "cross-core", "single-core"):
                bars.append(("%s %s" % (name, human_size(payload)),
                             r["p50_us"] / 1e3))
                break
    if not bars:
        return []
    path = os.path.join(data_dir, "large.dat")
    with open(path, "w") as f:
        for i, (label, ms) in enumerate(bars):
            f.write("%d \"%s\" %g\n" % (i, label, ms))
    image = os.path.join(out_dir, "large-payloads.png")
    script = "\n".join([
        "set terminal pngcairo size 1000,600 font 'sans,10'",
        "set output '%s'" % image,
        "set title 'Large payloads: p50 round trip (frames example 8 MiB "
        "Invert; 16 MiB echo, cross-core; memcpy: one copy)'",
        "set ylabel 'p50 (ms, log scale)'",
        "set logscale y",
        "set format y '%g'",
        "set grid ytics",
        "set style fill solid 0.6",
        "set boxwidth 0.6",
        "set xtics rotate by -30",
        "set xrange [-0.6:%g]" % (len(bars) - 0.4),
        "set yrange [%g:*]" % (min(ms for _, ms in bars) / 3),
        "set bmargin 6",
        "plot '%s' using 1:3:xtic(2) with boxes notitle" % path,
    ])
    subprocess.run([gnuplot], input=script, text=True, check=False)
    return [image]


def add_ratios(rows):
    """Ratio of each latency row's p50 to the spin and futex p50 of the same
    placement and payload, measured in this run. On one core the spin
    baseline is spin-with-yield: two pure spinners there measure the
    scheduler's time slice, not a hand-off.

    vs_grpc says how many times faster than plain gRPC (grpc-sync-unix) of
    the same run a row is: for latency rows gRPC's p50 over this p50 (same
    placement and payload), for throughput rows this calls/s over gRPC's
    (same number of callers; gRPC's callers are threads on one channel),
    for pipelined rows this calls/s over gRPC's best throughput row."""
    index = {}
    grpc_tput = {}
    for r in rows:
        if r.get("callers", 1) == 1 and kind(r) == "latency":
            index[(r["contender"], r["placement"], r["payload"])] = r
        if r["contender"] == BASELINE_GRPC and kind(r) == "throughput-threads":
            grpc_tput[r["callers"]] = r
    for r in rows:
        r["x_spin"] = None
        r["x_futex"] = None
        r["vs_grpc"] = None
        k = kind(r)
        if k.startswith("throughput"):
            g = grpc_tput.get(r.get("callers"))
            if g and g["calls_per_s"] > 0:
                r["vs_grpc"] = r["calls_per_s"] / g["calls_per_s"]
            continue
        if k == "pipelined":
            if grpc_tput:
                best = max(g["calls_per_s"] for g in grpc_tput.values())
                if best > 0:
                    r["vs_grpc"] = r["calls_per_s"] / best
            continue
        if k != "latency" or r.get("callers", 1) != 1 or r["placement"] not in (
                "cross-core", "same-core"):
            continue
        grpc = index.get((BASELINE_GRPC, r["placement"], r["payload"]))
        if grpc and r["p50_us"] > 0:
            r["vs_grpc"] = grpc["p50_us"] / r["p50_us"]
        spin_name = (BASELINE_SPIN if r["placement"] == "cross-core"
                     else BASELINE_SPIN_SAME_CORE)
        spin = index.get((spin_name, r["placement"], r["payload"]))
        futex = index.get((BASELINE_FUTEX, r["placement"], r["payload"]))
        if spin and spin["p50_us"] > 0:
            r["x_spin"] = r["p50_us"] / spin["p50_us"]
        if futex and futex["p50_us"] > 0:
            r["x_futex"] = r["p50_us"] / futex["p50_us"]


def micro_table(results):
    """The Google Benchmark results of each micro-benchmark target."""
    out = []
    for target, data in results.items():
        lines = []
        for b in data.get("benchmarks", []):
            bps = b.get("bytes_per_second")
            lines.append([b["name"], "%.0f" % b["real_time"],
                          "%.0f" % b["cpu_time"],
                          "%.2f GB/s" % (bps / 1e9) if bps else "-"])
        out += ["%s (per iteration):" % target, "",
                render_table(["benchmark", "real ns", "CPU ns", "bytes/s"],
                             lines), ""]
    return "\n".join(out)
