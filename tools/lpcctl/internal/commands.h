// lpcctl's commands (docs/lpcctl.md). Each prints its result to stdout (a
// failure to stderr) and returns the process's exit status: 0 on
// success, else the status code's number, and kUsageError for a command
// line that cannot be run.
//
// Thread safety: call from one thread (main).
#ifndef LPC_TOOLS_LPCCTL_INTERNAL_COMMANDS_H_
#define LPC_TOOLS_LPCCTL_INTERNAL_COMMANDS_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/call_context.h"
#include "runtime/channel.h"

namespace lpc::lpcctl {

inline constexpr int kUsageError = 2;

struct Options {
  // Where `list` looks, and where local: targets are found. Empty: the
  // default runtime directory.
  std::string runtime_dir;
  bool json = false;
  // Of each call lpcctl makes.
  absl::Duration deadline = absl::Seconds(5);
  // Request metadata of `call`.
  Metadata metadata;
  // `health`: the service to ask about ("" = the server).
  std::string service;
};

// A channel to `target`: a target string (local:, grpc:, auto:), or a bare
// port name, which means local:. Local ports are looked up in
// options.runtime_dir.
absl::StatusOr<std::shared_ptr<Channel>> Connect(const Options& options,
                                                 std::string_view target);

// Prints `status` to stderr as "lpcctl: <what>: <status>" and returns its
// code's number (0 for OK).
int Fail(std::string_view what, const absl::Status& status);

int RunList(const Options& options);
int RunShow(const Options& options, std::string_view target);
int RunHealth(const Options& options, std::string_view target);
// `method` is "Interface.Method", the interface by its full name or, when
// that is unambiguous, by its last component.
int RunCall(const Options& options, std::string_view target,
            std::string_view method, std::string_view request_json);

}  // namespace lpc::lpcctl

#endif  // LPC_TOOLS_LPCCTL_INTERNAL_COMMANDS_H_
