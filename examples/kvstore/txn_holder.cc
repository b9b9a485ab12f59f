// A kvstore client for txn_test: connects to a local port, begins `count`
// transactions, prints "ready", and holds them until it is killed (or its
// stdin closes). Usage: txn_holder RUNTIME_DIR PORT COUNT
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "examples/kvstore/kvstore.lpc.h"
#include "transports/local/local_transport.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: txn_holder RUNTIME_DIR PORT COUNT\n");
    return 2;
  }
  lpc::local::LocalChannelOptions lo;
  lo.runtime_dir = argv[1];
  auto channel = lpc::local::CreateLocalChannel(argv[2], {}, lo);
  if (!channel.ok()) {
    std::fprintf(stderr, "txn_holder: %s\n",
                 channel.status().ToString().c_str());
    return 1;
  }
  example::kv::KeyValueClient kv(*channel);
  const int count = std::atoi(argv[3]);
  for (int i = 0; i < count; ++i) {
    absl::StatusOr<example::kv::Txn> txn = kv.Begin();
    if (!txn.ok()) {
      std::fprintf(stderr, "txn_holder: Begin: %s\n",
                   txn.status().ToString().c_str());
      return 1;
    }
    absl::Status s = kv.TxnPut(*txn, "held/" + std::to_string(i), "x");
    if (!s.ok()) {
      std::fprintf(stderr, "txn_holder: TxnPut: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  std::printf("ready\n");
  std::fflush(stdout);
  char c;
  while (::read(0, &c, 1) > 0) {
  }
  return 0;
}
