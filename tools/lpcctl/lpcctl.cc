// lpcctl: lists the local ports of a host, shows a server's connections
// and counters, calls any method by JSON, and asks a server's health,
// through the introspection service every lpc server has
// (docs/lpcctl.md).
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "runtime/flags.h"
#include "tools/lpcctl/internal/commands.h"

ABSL_FLAG(std::string, runtime_dir, "",
          "the runtime directory of local ports (list, and local: targets); "
          "default: $XDG_RUNTIME_DIR/lpc, or /run/lpc");
ABSL_FLAG(bool, json, false, "print JSON instead of text");
ABSL_FLAG(absl::Duration, deadline, absl::Seconds(5),
          "the deadline of each call lpcctl makes (e.g. 500ms, 5s, 1m)");
ABSL_FLAG(std::vector<std::string>, metadata, {},
          "call: request metadata, key=value[,key=value...]");
ABSL_FLAG(std::string, service, "",
          "health: the service to ask about (default: the whole server)");

namespace {

constexpr char kUsage[] =
    "lpcctl list   [--runtime_dir=D] [--json]\n"
    "  lpcctl show   TARGET [--json]\n"
    "  lpcctl call   TARGET Interface.Method ['<json request>'] [--deadline=5s]\n"
    "                [--metadata=key=value,...] [--json]\n"
    "  lpcctl health TARGET [--service=NAME] [--json]\n"
    "TARGET: local:PORT, grpc:ADDRESS, auto:PORT@ADDRESS, or a bare PORT "
    "(local:)";

int Usage(const std::string& problem) {
  std::cerr << "lpcctl: " << problem << "\nusage: " << kUsage << "\n";
  return lpc::lpcctl::kUsageError;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args = lpc::ParseFlags(argc, argv, kUsage);
  if (args.empty()) return Usage("no command");

  lpc::lpcctl::Options options;
  options.runtime_dir = absl::GetFlag(FLAGS_runtime_dir);
  options.json = absl::GetFlag(FLAGS_json);
  options.deadline = absl::GetFlag(FLAGS_deadline);
  options.service = absl::GetFlag(FLAGS_service);
  if (options.deadline <= absl::ZeroDuration()) {
    return Usage("--deadline must be positive");
  }
  for (const std::string& kv : absl::GetFlag(FLAGS_metadata)) {
    std::vector<std::string> parts = absl::StrSplit(kv, absl::MaxSplits('=', 1));
    if (parts.size() != 2 || parts[0].empty()) {
      return Usage("--metadata wants key=value, got \"" + kv + "\"");
    }
    options.metadata.emplace(parts[0], parts[1]);
  }

  const std::string& command = args[0];
  const size_t n = args.size() - 1;
  if (command == "list") {
    if (n != 0) return Usage("list takes no arguments");
    return lpc::lpcctl::RunList(options);
  }
  if (command == "show") {
    if (n != 1) return Usage("show takes one TARGET");
    return lpc::lpcctl::RunShow(options, args[1]);
  }
  if (command == "health") {
    if (n != 1) return Usage("health takes one TARGET");
    return lpc::lpcctl::RunHealth(options, args[1]);
  }
  if (command == "call") {
    if (n != 2 && n != 3) {
      return Usage("call takes TARGET Interface.Method and a JSON request");
    }
    return lpc::lpcctl::RunCall(options, args[1], args[2], n == 3 ? args[3] : "{}");
  }
  return Usage("unknown command \"" + command + "\"");
}
