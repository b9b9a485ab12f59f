#!/usr/bin/env python3
"""Feeds bench_targets.check_targets synthetic rows: every target is judged
when its rows are there, met and missed on the right side of its line, and
"not measured" when a row is missing. Also bench_frames' parsing of
frames_client's output."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_frames  # noqa: E402
import bench_targets as bt  # noqa: E402

MIB = 1 << 20


def lat(contender, p50, payload=64, placement="cross-core", **extra):
    r = {"contender": contender, "placement": placement, "payload": payload,
         "callers": 1, "p50_us": p50, "p99_us": p50 * 2, "p999_us": p50 * 3,
         "calls_per_s": 1e6 / p50, "gbps": 2 * payload / (p50 * 1e3),
         "kind": "latency"}
    r.update(extra)
    return r


def tput(contender, callers, calls_per_s, k="throughput-threads", **extra):
    r = {"contender": contender, "placement": "unpinned", "payload": 64,
         "callers": callers, "p50_us": 10.0, "p99_us": 20.0,
         "p999_us": 30.0, "calls_per_s": calls_per_s, "gbps": 0,
         "kind": k}
    r.update(extra)
    return r


def micro(inproc_ns, stubs_ns, unit="ns"):
    return {"stub_benchmark": {"benchmarks": [
        {"name": "BM_InProcessCall_Ping/64/real_time", "run_type":
         "iteration", "real_time": inproc_ns, "cpu_time": 1.0,
         "time_unit": unit},
        {"name": "BM_StubLoopback_Ping/64", "run_type": "iteration",
         "real_time": stubs_ns, "cpu_time": stubs_ns, "time_unit": unit},
    ]}}


def all_rows():
    """A run in which every target is met."""
    rows = [
        lat("shm-spin", 0.5), lat("futex", 40.0),
        lat("futex", 6.0, placement="same-core"),
        lat("iceoryx-poll", 4.0), lat("grpc-sync-unix", 100.0),
        lat("grpc-callback-unix", 110.0), lat("grpc-sync-tcp", 150.0),
        lat("lpc-local", 0.9), lat("lpc-local-spin", 0.9),
        lat("lpc-local-block", 42.0),
        lat("lpc-local-block", 6.5, placement="same-core"),
        lat("lpc-grpc-unix", 102.0), lat("lpc-grpc-tcp", 150.0),
        lat("grpc-sync-unix", 2000.0, MIB), lat("lpc-local", 60.0, MIB),
        lat("memcpy", 30.0, MIB, placement="single-core"),
        lat("iceoryx-poll", 100.0, MIB),
        lat("lpc-local", 2000.0, 16 * MIB), lat("socketpair", 9000.0, 16 * MIB),
        lat("iceoryx-poll", 4000.0, 16 * MIB),
        lat("memcpy", 1000.0, 16 * MIB, placement="single-core"),
        lat(bt.ZEROCOPY, 3000.0, 16 * MIB, fill_us=1500.0, checksum_us=1300.0),
        lat(bt.FRAMES_LOCAL, 5000.0, 8 * MIB),
        lat(bt.FRAMES_GRPC, 16000.0, 8 * MIB),
        {"contender": "lpc-local", "placement": "cross-core", "payload": 64,
         "callers": 1, "p50_us": 100.0, "p99_us": 200.0, "p999_us": 300.0,
         "calls_per_s": 2.1e6, "gbps": 0, "kind": "pipelined",
         "window": 256, "server_cpu_us_per_call": 0.4,
         "client_cpu_us_per_call": 0.45},
        tput("lpc-local", 64, 1e5, "throughput-processes",
             min_caller_share=0.8),
        tput("lpc-local", 64, 1e5, "throughput-threads",
             min_caller_share=0.8),
    ]
    for n in bt.GRPC_CALLERS:
        for sock in ("unix", "tcp"):
            rows.append(tput("grpc-sync-" + sock, n, 1000.0 * n))
            rows.append(tput("lpc-grpc-" + sock, n, 1000.0 * n + 1))
    return rows


def by_name(targets, words):
    got = [t for t in targets if words in t["target"]]
    assert len(got) == 1, (words, [t["target"] for t in targets])
    return got[0]


def replace(rows, contender, payload, placement="cross-core", k="latency",
            callers=1, **fields):
    r = bt.find(rows, contender, placement, payload, k, callers)
    assert r is not None, (contender, payload)
    r.update(fields)
    return rows


class CheckTargetsTest(unittest.TestCase):

    def test_every_target_met_when_every_row_is_good(self):
        targets = bt.check_targets(all_rows(), micro(900, 500))
        self.assertGreaterEqual(len(targets), 19)
        for t in targets:
            self.assertIs(t["met"], True, t)

    def test_without_rows_every_target_is_not_measured(self):
        for t in bt.check_targets([], None):
            self.assertIsNone(t["met"], t)

    def test_one_mib_against_iceoryx(self):
        name = "1 MiB: faster than iceoryx"
        rows = replace(all_rows(), "lpc-local", MIB, p50_us=100.0)
        self.assertIs(by_name(bt.check_targets(rows), name)["met"], False)
        rows = replace(all_rows(), "lpc-local", MIB, p50_us=99.0)
        self.assertIs(by_name(bt.check_targets(rows), name)["met"], True)
        rows = [r for r in all_rows() if r["contender"] != "iceoryx-poll"]
        self.assertIsNone(by_name(bt.check_targets(rows), name)["met"])

    def test_one_mib_against_memcpy(self):
        name = "1 MiB: within 3x of one memcpy"
        rows = replace(all_rows(), "lpc-local", MIB, p50_us=91.0)
        t = by_name(bt.check_targets(rows), name)
        self.assertIs(t["met"], False)
        self.assertIn("3.0x memcpy", t["figure"])

    def test_sixteen_mib_against_socketpair(self):
        name = "16 MiB: >= 2x faster than a socketpair"
        rows = replace(all_rows(), "socketpair", 16 * MIB, p50_us=3999.0)
        self.assertIs(by_name(bt.check_targets(rows), name)["met"], False)
        rows = replace(all_rows(), "socketpair", 16 * MIB, p50_us=4000.0)
        self.assertIs(by_name(bt.check_targets(rows), name)["met"], True)

    def test_sixteen_mib_against_iceoryx(self):
        name = "16 MiB: within 1.5x of iceoryx"
        rows = replace(all_rows(), "lpc-local", 16 * MIB, p50_us=6001.0)
        self.assertIs(by_name(bt.check_targets(rows), name)["met"], False)
        rows = replace(all_rows(), "lpc-local", 16 * MIB, p50_us=6000.0)
        self.assertIs(by_name(bt.check_targets(rows), name)["met"], True)

    def test_zerocopy_frame(self):
        name = "zero-copy frame"
        # 3000 - 1500 - 1300 = 200 us <= 250 us (25% of memcpy's 1000 us).
        t = by_name(bt.check_targets(all_rows()), name)
        self.assertIs(t["met"], True)
        self.assertIn("= 200 us = 0.20x memcpy", t["figure"])
        rows = replace(all_rows(), bt.ZEROCOPY, 16 * MIB, p50_us=3051.0)
        self.assertIs(by_name(bt.check_targets(rows), name)["met"], False)
        rows = [r for r in all_rows() if r["contender"] != bt.ZEROCOPY]
        t = by_name(bt.check_targets(rows), name)
        self.assertIsNone(t["met"])
        self.assertEqual(bt.targets_table([t]).splitlines()[2].split(
            " | ")[1], "not measured")
        rows = all_rows()
        del bt.find(rows, bt.ZEROCOPY, "cross-core", 16 * MIB)["fill_us"]
        self.assertIsNone(by_name(bt.check_targets(rows), name)["met"])
        # The sealed-memfd row is not the judged one: alone, the target is
        # not measured; beside the pooled row, it changes nothing.
        sealed = dict(bt.find(all_rows(), bt.ZEROCOPY, "cross-core",
                              16 * MIB), contender=bt.ZEROCOPY + "-sealed",
                      p50_us=9000.0)
        rows = [r for r in all_rows() if r["contender"] != bt.ZEROCOPY]
        self.assertIsNone(by_name(bt.check_targets(rows + [sealed]),
                                  name)["met"])
        t = by_name(bt.check_targets(all_rows() + [sealed]), name)
        self.assertIs(t["met"], True)
        self.assertIn("= 200 us = 0.20x memcpy", t["figure"])

    def test_inprocess_against_stub_loopback(self):
        name = "in-process 64 B call"
        rows = all_rows()
        self.assertIs(by_name(bt.check_targets(rows, micro(1000, 500)),
                              name)["met"], True)
        self.assertIs(by_name(bt.check_targets(rows, micro(1001, 500)),
                              name)["met"], False)
        # Units other than ns: 63.6 us against 0.52 us.
        t = by_name(bt.check_targets(rows, micro(63.6, 0.52, "us")), name)
        self.assertIs(t["met"], False)
        self.assertIn("63600 ns = 122.3x 520 ns", t["figure"])
        t = by_name(bt.check_targets(rows, None), name)
        self.assertIsNone(t["met"])
        self.assertIn("--micro", t["figure"])

    def test_grpc_p50_per_socket_kind(self):
        for sock, plain in (("unix", 100.0), ("tcp", 150.0)):
            name = "64 B over gRPC (%s): p50" % sock
            rows = replace(all_rows(), "lpc-grpc-" + sock, 64,
                           p50_us=plain * 1.05)
            self.assertIs(by_name(bt.check_targets(rows), name)["met"], True)
            rows = replace(all_rows(), "lpc-grpc-" + sock, 64,
                           p50_us=plain * 1.06)
            self.assertIs(by_name(bt.check_targets(rows), name)["met"], False)
        rows = [r for r in all_rows() if r["contender"] != "grpc-sync-tcp"]
        self.assertIsNone(by_name(bt.check_targets(rows),
                                  "64 B over gRPC (tcp): p50")["met"])
        self.assertIs(by_name(bt.check_targets(rows),
                              "64 B over gRPC (unix): p50")["met"], True)

    def test_grpc_calls_per_second_at_every_caller_count(self):
        name = "64 B over gRPC (unix): calls/s"
        for n in bt.GRPC_CALLERS:
            rows = replace(all_rows(), "lpc-grpc-unix", 64, "unpinned",
                           "throughput-threads", n, calls_per_s=999.0 * n)
            t = by_name(bt.check_targets(rows), name)
            self.assertIs(t["met"], False, n)
        # A shortfall stays a miss when another count is missing.
        rows = replace(all_rows(), "lpc-grpc-unix", 64, "unpinned",
                       "throughput-threads", 1, calls_per_s=1.0)
        rows = [r for r in rows if not (r["contender"] == "lpc-grpc-unix" and
                                        r.get("callers") == 64)]
        t = by_name(bt.check_targets(rows), name)
        self.assertIs(t["met"], False)
        self.assertIn("64: missing", t["figure"])
        rows = [r for r in all_rows() if not (
            r["contender"] == "lpc-grpc-unix" and r.get("callers") == 16)]
        self.assertIsNone(by_name(bt.check_targets(rows), name)["met"])

    def test_frames_local_against_grpc(self):
        name = "frames example"
        rows = replace(all_rows(), bt.FRAMES_GRPC, 8 * MIB, p50_us=14999.0)
        t = by_name(bt.check_targets(rows), name)
        self.assertIs(t["met"], False)
        self.assertIn("frames-grpc p50 15.00 ms / frames-local p50 5.00 ms",
                      t["figure"])
        rows = [r for r in all_rows() if r["contender"] != bt.FRAMES_GRPC]
        self.assertIsNone(by_name(bt.check_targets(rows), name)["met"])

    def test_table_counts(self):
        rows = [r for r in all_rows() if r["contender"] != bt.ZEROCOPY]
        rows = replace(rows, "lpc-local", MIB, p50_us=1000.0)
        table = bt.targets_table(bt.check_targets(rows, micro(900, 500)))
        n = len(bt.check_targets(rows))
        # 1 MiB: memcpy and iceoryx missed; the zero-copy row missing.
        self.assertIn("Targets: %d met, 2 not met, 1 not measured." % (n - 3),
                      table)


class FramesParseTest(unittest.TestCase):
    OUT = ("frames_client: via local\n"
           "frames_client: 20 frames of 8388608 bytes: inverted 20/20 exact, "
           "checksums 20/20 right\n"
           "frames_client: Invert round trip p50 6.25 ms, slowest 9.50 ms "
           "(2.68 GB/s, the frame both ways)\n")

    def test_row(self):
        r = bench_frames.parse_client(self.OUT, "local", 20, 8 * MIB)
        self.assertEqual(r["contender"], "frames-local")
        self.assertEqual(r["payload"], 8 * MIB)
        self.assertEqual(r["samples"], 20)
        self.assertAlmostEqual(r["p50_us"], 6250.0)
        self.assertAlmostEqual(r["p99_us"], 9500.0)
        self.assertEqual(r["kind"], "latency")

    def test_wrong_frames_or_no_line(self):
        bad = self.OUT.replace("inverted 20/20", "inverted 19/20")
        with self.assertRaises(ValueError):
            bench_frames.parse_client(bad, "local", 20, 8 * MIB)
        with self.assertRaises(ValueError):
            bench_frames.parse_client("frames_client: via local\n", "local",
                                      20, 8 * MIB)


if __name__ == "__main__":
    unittest.main()
