// conformance_server: serves ConformanceServiceImpl in a process of its own,
// so that the conformance suite can run between two processes.
//
//   conformance_server [--local_port=NAME --runtime_dir=DIR]
//                      [--grpc=ADDRESS] [--max_message_size=BYTES]
//   conformance_server --client_of=TARGET --client_mode=chat|park
//                      [--runtime_dir=DIR]
//
// Prints "ready <target> [<target>...]" once every listener accepts calls,
// then serves until its standard input reaches end of file (the test closes
// it, or dies), and shuts down. The server installs the service's recording
// interceptor and relays Relay calls to its own first target.
//
// With --client_of it is instead a client that the suite kills mid-call:
// it opens a Chat stream and exchanges one item ("chat"), or sends a
// Park("child") call ("park"), prints "ready <mode>", and waits until its
// standard input reaches end of file.
#include <unistd.h>

#include <cstdio>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_join.h"
#include "runtime/stream.h"
#include "runtime/config.pb.h"
#include "runtime/flags.h"
#include "runtime/server.h"
#include "tests/conformance/conformance_service.h"
#include "transports/connect.h"

ABSL_FLAG(std::string, local_port, "", "serve on this local port");
ABSL_FLAG(std::string, runtime_dir, "", "the local port's runtime directory");
ABSL_FLAG(std::string, grpc, "", "serve gRPC on this address");
ABSL_FLAG(uint64_t, max_message_size, 0,
          "the server's message limit; 0 keeps ServerOptions' default");
ABSL_FLAG(std::string, client_of, "", "be a client of this target instead");
ABSL_FLAG(std::string, client_mode, "chat", "the client's call: chat or park");

namespace {

void WaitForEndOfInput() {
  char buf[64];
  while (read(STDIN_FILENO, buf, sizeof(buf)) > 0) {
  }
}

int RunClient() {
  lpc::config::Endpoint endpoint;
  endpoint.mutable_local()->set_runtime_dir(absl::GetFlag(FLAGS_runtime_dir));
  endpoint.set_default_timeout_ms(600000);
  absl::StatusOr<std::shared_ptr<lpc::Channel>> channel =
      lpc::ConnectTarget(absl::GetFlag(FLAGS_client_of), &endpoint);
  if (!channel.ok()) {
    std::fprintf(stderr, "conformance_server: %s\n",
                 channel.status().ToString().c_str());
    return 1;
  }
  lpc::conformance::ConformanceClient client(*channel);
  const std::string mode = absl::GetFlag(FLAGS_client_mode);
  if (mode == "chat") {
    auto stream = client.Chat();
    lpc::conformance::Item item;
    item.set_seq(1);
    item.set_data("child");
    if (!stream.Write(item) || !stream.Read(&item)) {
      std::fprintf(stderr, "conformance_server: chat: %s\n",
                   stream.Finish().ToString().c_str());
      return 1;
    }
    std::printf("ready chat\n");
    std::fflush(stdout);
    WaitForEndOfInput();
    return 0;
  }
  if (mode == "park") {
    lpc::CallContext ctx;
    client.ParkAsync(
        "child",
        [](absl::StatusOr<lpc::conformance::ConformanceClient::ParkResult>) {},
        &ctx);
    std::printf("ready park\n");
    std::fflush(stdout);
    WaitForEndOfInput();
    return 0;
  }
  std::fprintf(stderr, "conformance_server: unknown --client_mode '%s'\n",
               mode.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args = lpc::ParseFlags(
      argc, argv,
      "conformance_server [--local_port=NAME --runtime_dir=DIR] "
      "[--grpc=ADDRESS] [--max_message_size=BYTES]");
  if (!args.empty()) {
    std::fprintf(stderr, "conformance_server: unexpected argument '%s'\n",
                 args[0].c_str());
    return 2;
  }
  if (!absl::GetFlag(FLAGS_client_of).empty()) return RunClient();
  lpc::config::ServerEndpoint entry;
  entry.set_name("conformance");
  entry.set_local_port(absl::GetFlag(FLAGS_local_port));
  entry.set_runtime_dir(absl::GetFlag(FLAGS_runtime_dir));
  if (!absl::GetFlag(FLAGS_grpc).empty()) {
    entry.add_grpc_address(absl::GetFlag(FLAGS_grpc));
  }
  lpc::ServerOptions options;
  if (absl::GetFlag(FLAGS_max_message_size) > 0) {
    options.max_message_size = absl::GetFlag(FLAGS_max_message_size);
    entry.set_max_message_size(options.max_message_size);
  }
  options.shutdown_grace = absl::Seconds(1);
  lpc::Server server(options);
  lpc::conformance::ConformanceServiceImpl service;
  absl::Status s = server.RegisterService(&service);
  if (s.ok()) s = server.AddInterceptor(service.interceptor());
  if (s.ok()) s = lpc::AddListenersFromConfig(&server, entry);
  if (s.ok()) s = server.Start();
  if (s.ok()) {
    lpc::config::Endpoint self;
    self.mutable_local()->set_runtime_dir(absl::GetFlag(FLAGS_runtime_dir));
    self.set_max_message_size(options.max_message_size);
    absl::StatusOr<std::shared_ptr<lpc::Channel>> channel =
        lpc::ConnectTarget(server.targets().at(0), &self);
    s = channel.status();
    if (s.ok()) service.set_relay_channel(*std::move(channel));
  }
  if (!s.ok()) {
    std::fprintf(stderr, "conformance_server: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("ready %s\n", absl::StrJoin(server.targets(), " ").c_str());
  std::fflush(stdout);
  WaitForEndOfInput();
  server.Shutdown();
  service.set_relay_channel(nullptr);
  return 0;
}
