// greeter_client: calls Greeter through the transport that its config's
// endpoint names and prints the replies.
//
//   greeter_client --lpc_config=client.textproto <name>
#include <cstdio>
#include <string>
#include <vector>

#include "greeter.lpc.h"
#include "runtime/config.h"
#include "runtime/flags.h"
#include "transports/connect.h"

namespace {

int Fail(const absl::Status& status, const char* what) {
  std::fprintf(stderr, "greeter_client: %s: %s\n", what,
               status.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args =
      lpc::ParseFlags(argc, argv, "greeter_client --lpc_config=<file> <name>");
  if (args.size() != 1) {
    std::fprintf(stderr, "usage: greeter_client --lpc_config=<file> <name>\n");
    return 2;
  }
  absl::StatusOr<lpc::config::Config> config = lpc::LoadConfigFromArgsOrEnv();
  if (!config.ok()) return Fail(config.status(), "config");
  auto channel = lpc::ConnectFromConfig(
      *config, greeter::GreeterClient::Descriptor().full_name);
  if (!channel.ok()) return Fail(channel.status(), "connect");
  greeter::GreeterClient client(*channel);
  std::printf("via %s\n", std::string((*channel)->transport_name()).c_str());

  absl::StatusOr<greeter::Greeting> greeting = client.Greet(args[0]);
  if (!greeting.ok()) return Fail(greeting.status(), "Greet");
  std::printf("Greet: %s (caller %s)\n", greeting->text().c_str(),
              greeting->caller().c_str());

  absl::StatusOr<greeter::Greeting> empty = client.Greet("");
  std::printf("Greet(\"\"): %s\n", empty.status().ToString().c_str());

  absl::StatusOr<int64_t> sum = client.Sum({1, 2, 39});
  if (!sum.ok()) return Fail(sum.status(), "Sum");
  std::printf("Sum: %lld\n", static_cast<long long>(*sum));
  return 0;
}
