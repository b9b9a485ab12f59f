// greeter_server: serves Greeter on the listeners that its config's server
// entry "greeter" names, until SIGINT or SIGTERM.
//
//   greeter_server --lpc_config=server.textproto
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "greeter.lpc.h"
#include "runtime/flags.h"
#include "runtime/serve.h"

namespace {

class GreeterImpl final : public greeter::GreeterService {
 public:
  absl::StatusOr<greeter::Greeting> Greet(lpc::CallContext& ctx,
                                          const std::string& name) override {
    if (name.empty()) return absl::InvalidArgumentError("name is empty");
    greeter::Greeting greeting;
    greeting.set_text("hello, " + name);
    greeting.set_caller(ctx.peer().ToString());
    return greeting;
  }

  absl::StatusOr<int64_t> Sum(lpc::CallContext& ctx,
                              const std::vector<int64_t>& values) override {
    int64_t total = 0;
    for (int64_t v : values) {
      if (__builtin_add_overflow(total, v, &total)) {
        return absl::OutOfRangeError("sum overflows int64");
      }
    }
    return total;
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args =
      lpc::ParseFlags(argc, argv, "greeter_server --lpc_config=<file>");
  if (!args.empty()) {
    std::fprintf(stderr, "greeter_server: unexpected argument '%s'\n",
                 args[0].c_str());
    return 2;
  }
  GreeterImpl greeter;
  return lpc::ServeUntilSignal("greeter_server", "greeter", &greeter);
}
