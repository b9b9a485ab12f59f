// Calls lpc.interop.Greeter.WhoAmI through lpc's own client, configured
// entirely by a config file (LPC_CONFIG): the endpoint's target and its
// gRPC TLS files. Prints the reply (the caller as the handler sees it), or
// "whoami_client: <status>" on stderr and exits 1. For
// python_features_test, which checks lpc's client side of TLS and mTLS.
#include <cstdio>
#include <cstdlib>

#include "runtime/config.h"
#include "transports/connect.h"
#include "transports/grpc/interop/interop.lpc.h"

int main() {
  const char* path = getenv("LPC_CONFIG");
  absl::StatusOr<lpc::config::Config> config =
      lpc::LoadConfigFile(path != nullptr ? path : "");
  absl::StatusOr<std::shared_ptr<lpc::Channel>> channel =
      config.ok() ? lpc::ConnectFromConfig(
                        *config, lpc::interop::GreeterClient::Descriptor()
                                     .full_name)
                  : absl::StatusOr<std::shared_ptr<lpc::Channel>>(
                        config.status());
  absl::StatusOr<std::string> who =
      channel.ok() ? lpc::interop::GreeterClient(*channel).WhoAmI()
                   : absl::StatusOr<std::string>(channel.status());
  if (!who.ok()) {
    fprintf(stderr, "whoami_client: %s\n", who.status().ToString().c_str());
    return 1;
  }
  printf("%s\n", who->c_str());
  return 0;
}
