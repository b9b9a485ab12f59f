// A client of the chain test that chain_test starts as a process and kills
// mid-call: it calls Forward(wait_for_cancel) on the target in argv[1]
// (local: ports in the runtime directory argv[2]) and waits for the reply.
#include <cstdio>

#include "absl/time/time.h"
#include "runtime/config.pb.h"
#include "tests/propagation/propagation.lpc.h"
#include "transports/connect.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: chain_client <target> <runtime-dir>\n");
    return 2;
  }
  lpc::config::Endpoint e;
  e.mutable_local()->set_runtime_dir(argv[2]);
  auto channel = lpc::ConnectTarget(argv[1], &e);
  if (!channel.ok()) {
    std::fprintf(stderr, "chain_client: %s\n", channel.status().ToString().c_str());
    return 1;
  }
  lpc::propagation::HopClient client(*channel);
  lpc::CallContext ctx;
  ctx.set_timeout(absl::Seconds(30));
  auto seen = client.Forward(/*wait_for_cancel=*/true, /*link=*/true, &ctx);
  std::printf("chain_client: %s\n", seen.status().ToString().c_str());
  return 0;
}
