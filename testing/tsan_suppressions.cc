// ThreadSanitizer suppressions compiled into every lpc test binary.
//
// Each entry names a library that lpc does not build and says why TSan's
// report about it is not a real race. lpc's own code is never suppressed: it
// uses std::mutex, std::condition_variable and std::atomic, which TSan sees.

extern "C" const char* __tsan_default_suppressions() {
  return
      // Debian builds abseil without -fsanitize=thread, so the happens-before
      // edges of absl::Mutex and its deadlock graph are invisible to TSan and
      // every access they guard is reported as a race.
      "race:libabsl_*\n"
      // absl::Status keeps its message in a refcounted rep. Part of the
      // refcounting is inlined from the header (instrumented) and part runs
      // in Debian's libabsl_status (uninstrumented), so TSan sees the final
      // Unref free the rep but not the release that ordered the other
      // thread's last read before it.
      "race:absl::*::Status::Unref\n"
      "race:absl::*::Status::UnrefNonInlined\n"
      "mutex:libabsl_*\n"
      // gRPC and its gpr core lock with absl::Mutex and gpr_mu, also built
      // without TSan, so their internal threads look unsynchronised.
      "race:libgrpc*\n"
      "race:libgpr*\n"
      // The memory those libraries allocate, free and copy through TSan's
      // interceptors (malloc, free, memcpy) is then touched by lpc's
      // threads under gRPC's invisible locks: every call brought about 150
      // such reports, each matched by the two entries above only after its
      // stacks were restored and symbolised, and a long-lived server spent
      // 88% of its CPU on that (a TSan gRPC call took 10 to 25 ms). These
      // make TSan skip the interceptors called from gRPC's own libraries:
      // their accesses, which the entries above suppress anyway, and any
      // synchronisation they make through libc. gRPC synchronises with
      // absl::Mutex and absl::CondVar, which TSan cannot see in any case,
      // and lpc marks the one edge it relies on across gRPC, the
      // completion queue, by hand (HandToQueue in
      // transports/grpc/internal/cq_pollers.h). Each entry must match
      // exactly one loaded library, by its path: lpc's own
      // transports/grpc library is libtransports_Sgrpc_Slibgrpc.so.
      "called_from_lib:/libgpr.so.\n"
      "called_from_lib:/libgrpc.so.\n"
      "called_from_lib:/libgrpc++.so.\n"
      // upb, gRPC's message and metadata parser, is the same: built without
      // TSan and called under gRPC's own uninstrumented locks.
      "race:libupb*\n"
      // OpenSSL (gRPC's TLS) is built without TSan too and its buffers are
      // handed between gRPC's threads under gRPC's uninstrumented locks.
      "race:libssl.so*\n"
      "race:libcrypto.so*\n"
      "mutex:libgrpc*\n"
      "mutex:libgpr*\n"
      // protobuf's lazy descriptor initialisation uses absl::call_once style
      // primitives from an uninstrumented library.
      "race:libprotobuf*\n"
      "deadlock:libgrpc*\n"
      // gRPC's timer manager lets a surplus timer thread ("grpc_global_tim")
      // exit and joins it only when it next starts one or when gRPC shuts
      // down, which a process that exits with gRPC still initialised never
      // reaches: TSan reports the finished, unjoined thread as leaked. The
      // thread is gRPC's (created in libgpr), not lpc's.
      "thread:libgpr*\n";
}
