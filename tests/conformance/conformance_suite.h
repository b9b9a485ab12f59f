// The conformance suite: one set of tests that every lpc transport must
// pass with identical results and status codes.
//
// A transport joins the suite by implementing ConformanceTransport (start a
// server that serves ConformanceServiceImpl, in this process or another,
// and open channels to it) and instantiating the suite in its own test file:
//
//   INSTANTIATE_TEST_SUITE_P(Local, ConformanceTest,
//       ::testing::Values(ConformanceParam{"local", [] { return ...; }}),
//       ConformanceParamName);
//
// The suite only talks to the server through calls, so a server in a
// separate process works the same as one in this process.
#ifndef LPC_TESTS_CONFORMANCE_CONFORMANCE_SUITE_H_
#define LPC_TESTS_CONFORMANCE_CONFORMANCE_SUITE_H_

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "runtime/channel.h"
#include "runtime/server.h"

namespace lpc::conformance {

class ConformanceTransport {
 public:
  virtual ~ConformanceTransport() = default;

  // Starts a server with `options` serving a fresh ConformanceServiceImpl.
  virtual absl::Status StartServer(const ServerOptions& options) = 0;

  // A new channel to the server started last.
  virtual absl::StatusOr<std::shared_ptr<Channel>> NewChannel(
      const ChannelOptions& options) = 0;

  // Stops the server; called by the fixture's TearDown.
  virtual void StopServer() = 0;

  // Whether the server learns the caller's uid, gid and pid.
  virtual bool HasKernelCredentials() const = 0;

  // The server's process id (this process for an in-process server), to
  // read its memory use from /proc.
  virtual int ServerPid() const = 0;

  // Starts a client of the server in a process of its own and returns once
  // it is in the state `mode` names: "chat" (a Chat stream that has echoed
  // one item) or "park" (a Park("child") call sent). UNIMPLEMENTED where no
  // other process can reach the server; the suite then drops the client's
  // handles instead.
  virtual absl::Status StartClientProcess(const std::string& mode) {
    (void)mode;
    return absl::UnimplementedError("no client processes");
  }
  // Kills that client with SIGKILL.
  virtual void KillClientProcess() {}
};

struct ConformanceParam {
  std::string name;
  std::function<std::unique_ptr<ConformanceTransport>()> factory;
};

// Keeps gtest from printing the parameter as raw bytes.
inline void PrintTo(const ConformanceParam& param, std::ostream* os) {
  *os << param.name;
}

inline std::string ConformanceParamName(
    const ::testing::TestParamInfo<ConformanceParam>& info) {
  return info.param.name;
}

// The size limit every conformance server and channel is given, so that the
// oversize tests need not move 64 MiB.
inline constexpr size_t kConformanceMaxMessageSize = size_t{1} << 20;

class ConformanceTest : public ::testing::TestWithParam<ConformanceParam> {
 protected:
  void SetUp() override;
  void TearDown() override;

  std::unique_ptr<ConformanceTransport> transport_;
  std::shared_ptr<Channel> channel_;
};

// The streaming cases (conformance_streams.cc): message order, half-close
// from either side, an early finish with a status, cancel, deadline and the
// client going away mid-stream as the handler sees them, an oversized
// message, many concurrent streams on one channel, and an asynchronous
// handler. A transport that carries the call model joins them with
// INSTANTIATE_TEST_SUITE_P(..., StreamConformanceTest, ...).
class StreamConformanceTest : public ConformanceTest {};

}  // namespace lpc::conformance

#endif  // LPC_TESTS_CONFORMANCE_CONFORMANCE_SUITE_H_
