// greeter_client --lpc_config=<file> [--name=<name>]: calls Greet through
// the transport that the config names and prints
// "greeter_client: via <transport>: <reply> (call <n>)".
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "greeter.lpc.h"
#include "runtime/config.h"
#include "transports/connect.h"

ABSL_FLAG(std::string, name, "cmake", "who to greet");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  absl::StatusOr<lpc::config::Config> config = lpc::LoadConfigFromArgsOrEnv();
  if (!config.ok()) {
    std::fprintf(stderr, "greeter_client: %s\n", config.status().ToString().c_str());
    return 2;
  }
  using consumer::greeter::GreeterClient;
  auto channel = lpc::ConnectFromConfig(*config, GreeterClient::Descriptor().full_name);
  if (!channel.ok()) {
    std::fprintf(stderr, "greeter_client: %s\n", channel.status().ToString().c_str());
    return 1;
  }
  GreeterClient greeter(*channel);
  uint64_t calls = 0;
  absl::StatusOr<std::string> reply = greeter.Greet(absl::GetFlag(FLAGS_name), &calls);
  if (!reply.ok()) {
    std::fprintf(stderr, "greeter_client: Greet: %s\n", reply.status().ToString().c_str());
    return 1;
  }
  std::printf("greeter_client: via %s: %s (call %llu)\n",
              std::string((*channel)->transport_name()).c_str(), reply->c_str(),
              static_cast<unsigned long long>(calls));
  return 0;
}
