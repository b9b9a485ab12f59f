// calculator_client: calls every method of the calculator example once,
// through the transport its config names, and prints what came back.
//
//   calculator_client --lpc_config=examples/calculator/local.textproto
//   calculator_client --lpc_config=examples/calculator/grpc.textproto
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "examples/calculator/calculator.lpc.h"
#include "runtime/config.h"
#include "runtime/flags.h"
#include "transports/connect.h"

using example::calculator::CalculatorClient;

namespace {

int Check(const absl::Status& s, const char* what) {
  if (s.ok()) return 0;
  std::fprintf(stderr, "calculator_client: %s: %s\n", what, s.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args =
      lpc::ParseFlags(argc, argv, "calculator_client --lpc_config=<file>");
  if (!args.empty()) {
    std::fprintf(stderr, "calculator_client: unexpected argument '%s'\n",
                 args[0].c_str());
    return 2;
  }
  absl::StatusOr<lpc::config::Config> config = lpc::LoadConfigFromArgsOrEnv();
  if (!config.ok()) return Check(config.status(), "config");
  auto channel = lpc::ConnectFromConfig(*config, CalculatorClient::Descriptor().full_name);
  if (!channel.ok()) return Check(channel.status(), "connect");
  CalculatorClient calc(*channel);
  std::printf("calculator_client: via %s\n",
              std::string((*channel)->transport_name()).c_str());

  absl::StatusOr<double> sum = calc.Add(1.5, 2.25);
  if (int rc = Check(sum.status(), "Add")) return rc;
  std::printf("Add(1.5, 2.25) = %g\n", *sum);

  int64_t q = 0, r = 0;
  if (int rc = Check(calc.Divide(17, 5, &q, &r), "Divide")) return rc;
  std::printf("Divide(17, 5) = %lld remainder %lld\n", static_cast<long long>(q),
              static_cast<long long>(r));
  absl::Status by_zero = calc.Divide(1, 0, &q, &r);
  std::printf("Divide(1, 0) -> %s\n", by_zero.ToString().c_str());

  int64_t total = 100;
  absl::StatusOr<int32_t> added = calc.Accumulate(&total, {1, 2, 3});
  if (int rc = Check(added.status(), "Accumulate")) return rc;
  std::printf("Accumulate(total=100, {1,2,3}) -> added %d, total %lld\n", *added,
              static_cast<long long>(total));

  absl::StatusOr<double> applied = calc.Apply(example::calculator::MUL, 6, 7);
  if (int rc = Check(applied.status(), "Apply")) return rc;
  std::printf("Apply(MUL, 6, 7) = %g\n", *applied);

  example::calculator::Shape square;
  square.set_style(example::calculator::Shape::FILLED);
  for (auto [x, y] : {std::pair{0.0, 0.0}, {1.0, 0.0}, {1.0, 1.0}, {0.0, 1.0}}) {
    auto* v = square.add_vertices();
    v->set_x(x);
    v->set_y(y);
  }
  square.set_label("unit square");
  example::calculator::Shape scaled;
  absl::StatusOr<std::optional<double>> area = calc.Scale(square, 3, &scaled);
  if (int rc = Check(area.status(), "Scale")) return rc;
  std::printf("Scale(unit square, 3) -> area %s, label \"%s\"\n",
              area->has_value() ? absl::StrCat(**area).c_str() : "none",
              scaled.label().c_str());

  example::calculator::Scalars s;
  s.set_i8(-128);
  s.set_u64(UINT64_MAX);
  s.set_s("héllo");
  absl::StatusOr<example::calculator::Scalars> echoed = calc.Echo(s);
  if (int rc = Check(echoed.status(), "Echo")) return rc;
  std::printf("Echo(i8=-128, u64=max, s=héllo) -> %s\n", echoed->ShortDebugString().c_str());

  example::common::Note note;
  auto counts = calc.CountWords({"to", "be", "or", "not", "to", "be"}, &note);
  if (int rc = Check(counts.status(), "CountWords")) return rc;
  std::printf("CountWords -> to=%u be=%u or=%u not=%u (%s)\n", (*counts)["to"],
              (*counts)["be"], (*counts)["or"], (*counts)["not"], note.text().c_str());

  absl::StatusOr<int16_t> times = calc.Times(-100, 200);
  if (int rc = Check(times.status(), "Times")) return rc;
  std::printf("Times(-100, 200) = %d\n", *times);

  if (int rc = Check(calc.Log("hello from calculator_client"), "Log")) return rc;
  std::printf("Log (oneway) sent; constants: kMaxItems=%d kGreeting=\"%s\"\n",
              example::calculator::kMaxItems,
              std::string(example::calculator::kGreeting).c_str());
  return 0;
}
