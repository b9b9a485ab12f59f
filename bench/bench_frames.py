"""The frames example as a bench/run contender: rows frames-local and
frames-grpc (8 MiB Invert round trips through examples/frames).

Starts //examples/frames:frames_server with a local port and a gRPC
listener on 127.0.0.1 (a free port) in a fresh temp dir, pinned to the
server CPU, waits for its "ready" line, runs frames_client once with each
transport's config, pinned to the client CPU, and stops the server with
SIGTERM by pid (SIGKILL if it does not exit). The client sends `frames`
frames of `nbytes` and prints

    frames_client: via <transport>
    frames_client: N frames of B bytes: inverted N/N exact, checksums N/N right
    frames_client: Invert round trip p50 X ms, slowest Y ms (...)

which this module parses into one latency row per transport. frames_client
checks every byte that comes back; a mismatch fails the contender.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROUND_TRIP = re.compile(r"Invert round trip p50 ([0-9.]+) ms, slowest "
                        r"([0-9.]+) ms")
EXACT = re.compile(r"(\d+) frames of (\d+) bytes: inverted (\d+)/(\d+) exact")
SERVICE = "example.frames.FrameProcessor"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(cpu):
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def parse_client(out, transport, frames, nbytes):
    """One row from frames_client's output, or raises ValueError."""
    m = ROUND_TRIP.search(out)
    e = EXACT.search(out)
    if not m or not e:
        raise ValueError("no round-trip line in frames_client's output")
    if int(e.group(3)) != frames or int(e.group(2)) != nbytes:
        raise ValueError("frames came back wrong: " + e.group(0))
    p50_us = float(m.group(1)) * 1e3
    slowest_us = float(m.group(2)) * 1e3
    return {
        "contender": "frames-" + transport, "placement": "cross-core",
        "payload": nbytes, "callers": 1, "samples": frames,
        "p50_us": p50_us, "p99_us": slowest_us, "p999_us": slowest_us,
        "mean_us": p50_us, "max_us": slowest_us,
        "calls_per_s": 1e6 / p50_us if p50_us > 0 else 0,
        "gbps": 2 * nbytes / (p50_us * 1e3) if p50_us > 0 else 0,
        "kind": "latency",
        "note": "examples/frames Invert: p50 and slowest of %d frames; "
                "calls/s = 1 / p50" % frames,
    }


def run_frames(bin_root, frames=20, nbytes=8 << 20, timeout=60):
    """Returns (rows, status) as bench/run's run_contender does."""
    server_bin = os.path.join(bin_root, "examples", "frames", "frames_server")
    client_bin = os.path.join(bin_root, "examples", "frames", "frames_client")
    for b in (server_bin, client_bin):
        if not os.path.exists(b):
            return [], "skipped: %s not built" % os.path.basename(b)
    cross = (os.cpu_count() or 1) >= 2
    client_cpu, server_cpu = (0, 1) if cross else (None, None)
    work = tempfile.mkdtemp(prefix="lpc-bench-frames.")
    port = free_port()
    configs = {
        "server": 'server { name: "frames" local_port: "frames" '
                  'runtime_dir: "%s" grpc_address: "127.0.0.1:%d" '
                  'same_uid_buffer_pool: true }\n' % (work, port),
        # The same-uid buffer pool (docs/zero-copy.md), as the example's
        # own local.textproto: no memfd per frame.
        "local": 'endpoint { service: "%s" target: "local:frames" '
                 'local { runtime_dir: "%s" same_uid_buffer_pool: true '
                 'buffer_pool_chunk_bytes: %d buffer_pool_chunks: 8 } }\n'
                 % (SERVICE, work, max(4096, (nbytes + 4095) // 4096 * 4096)),
        "grpc": 'endpoint { service: "%s" target: "grpc:127.0.0.1:%d" }\n'
                % (SERVICE, port),
    }
    for name, text in configs.items():
        with open(os.path.join(work, name + ".textproto"), "w") as f:
            f.write(text)
    log_path = os.path.join(work, "server.log")
    server = None
    rows = []
    try:
        with open(log_path, "w") as log:
            server = subprocess.Popen(
                [server_bin, "--lpc_config=" + os.path.join(
                    work, "server.textproto")],
                stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=pinned(server_cpu))
        for _ in range(200):
            with open(log_path) as f:
                if "ready" in f.read():
                    break
            if server.poll() is not None:
                break
            time.sleep(0.05)
        with open(log_path) as f:
            text = f.read()
        if "ready" not in text:
            return [], "failed: frames_server not ready: " + \
                " | ".join(text.strip().splitlines()[-3:])
        for transport in ("local", "grpc"):
            proc = subprocess.run(
                [client_bin, "--lpc_config=" + os.path.join(
                    work, transport + ".textproto"), "--no_oversize",
                 str(frames), str(nbytes)],
                capture_output=True, text=True, timeout=timeout,
                preexec_fn=pinned(client_cpu))
            if proc.returncode != 0:
                tail = " | ".join((proc.stdout + proc.stderr).strip()
                                  .splitlines()[-3:])
                return rows, "failed (%s, exit %d): %s" % (
                    transport, proc.returncode, tail)
            if "via " + transport not in proc.stdout:
                return rows, "failed: frames_client did not go via " + \
                    transport
            try:
                rows.append(parse_client(proc.stdout, transport, frames,
                                         nbytes))
            except ValueError as e:
                return rows, "failed (%s): %s" % (transport, e)
        return rows, "ok"
    except subprocess.TimeoutExpired:
        return rows, "timed out after %ds" % timeout
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(work, ignore_errors=True)
