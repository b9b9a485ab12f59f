// greeter_server --lpc_config=<file>: serves Greeter on the listeners that
// the config's server entry "greeter" names, until SIGINT or SIGTERM.
#include <atomic>

#include "absl/flags/parse.h"
#include "greeter.lpc.h"
#include "runtime/serve.h"

namespace {

class Greeter final : public consumer::greeter::GreeterService {
 public:
  absl::StatusOr<std::string> Greet(lpc::CallContext& ctx, const std::string& name,
                                    uint64_t* calls) override {
    if (name.empty()) return absl::InvalidArgumentError("empty name");
    *calls = ++calls_;
    return "hello, " + name;
  }

 private:
  std::atomic<uint64_t> calls_{0};
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  Greeter greeter;
  return lpc::ServeUntilSignal("greeter_server", "greeter", &greeter);
}
