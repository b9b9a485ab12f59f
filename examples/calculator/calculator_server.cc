// calculator_server: serves the calculator example on the listeners its
// config names (see local.textproto / grpc.textproto's `server` entry).
//
//   calculator_server --lpc_config=examples/calculator/server.textproto
//
// Prints "calculator_server: ready <targets>", serves until SIGINT/SIGTERM.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "examples/calculator/calculator.lpc.h"
#include "runtime/flags.h"
#include "runtime/serve.h"

namespace example::calculator {

class CalculatorImpl final : public CalculatorService {
 public:
  absl::StatusOr<double> Add(lpc::CallContext& ctx, double a, double b) override {
    return a + b;
  }

  absl::Status Divide(lpc::CallContext& ctx, int64_t num, int64_t den,
                      int64_t* quotient, int64_t* remainder) override {
    if (den == 0) return absl::InvalidArgumentError("division by zero");
    if (num == INT64_MIN && den == -1) {
      return absl::OutOfRangeError("INT64_MIN / -1 overflows");
    }
    *quotient = num / den;
    *remainder = num % den;
    return absl::OkStatus();
  }

  absl::StatusOr<int32_t> Accumulate(lpc::CallContext& ctx, int64_t* total,
                                     const std::vector<int64_t>& values) override {
    if (values.size() > static_cast<size_t>(kMaxItems)) {
      return absl::InvalidArgumentError("too many values");
    }
    for (int64_t v : values) {
      if (__builtin_add_overflow(*total, v, total)) {
        return absl::OutOfRangeError("total overflows int64");
      }
    }
    return static_cast<int32_t>(values.size());
  }

  absl::StatusOr<double> Apply(lpc::CallContext& ctx, Op op, double a,
                               double b) override {
    switch (op) {
      case ADD: return a + b;
      case SUB: return a - b;
      case MUL: return a * b;
      case DIV:
        if (b == 0) return absl::InvalidArgumentError("division by zero");
        return a / b;
      default:
        return absl::InvalidArgumentError("unknown operation");
    }
  }

  absl::StatusOr<std::optional<double>> Scale(lpc::CallContext& ctx,
                                              const Shape& shape, double factor,
                                              Shape* scaled) override {
    if (shape.vertices_size() > Shape_kMaxVertices) {
      return absl::InvalidArgumentError("too many vertices");
    }
    *scaled = shape;
    for (auto& v : *scaled->mutable_vertices()) {
      v.set_x(v.x() * factor);
      v.set_y(v.y() * factor);
    }
    if (scaled->vertices_size() < 3) return std::optional<double>();
    double area = 0;  // Shoelace formula.
    for (int i = 0; i < scaled->vertices_size(); ++i) {
      const auto& p = scaled->vertices(i);
      const auto& q = scaled->vertices((i + 1) % scaled->vertices_size());
      area += p.x() * q.y() - q.x() * p.y();
    }
    return std::optional<double>(std::fabs(area) / 2);
  }

  absl::StatusOr<Scalars> Echo(lpc::CallContext& ctx, const Scalars& value) override {
    return value;
  }

  absl::StatusOr<std::map<std::string, uint32_t>> CountWords(
      lpc::CallContext& ctx, const std::vector<std::string>& words,
      example::common::Note* note) override {
    std::map<std::string, uint32_t> counts;
    for (const auto& w : words) ++counts[w];
    note->set_text("counted for " + ctx.peer().ToString());
    note->set_origin(example::common::SERVER);
    return counts;
  }

  absl::StatusOr<int16_t> Times(lpc::CallContext& ctx, int8_t x,
                                uint8_t factor) override {
    return static_cast<int16_t>(x * factor);
  }

  void Log(lpc::CallContext& ctx, const std::string& line) override {
    std::printf("calculator_server: log from %s: %s\n",
                ctx.peer().ToString().c_str(), line.c_str());
    std::fflush(stdout);
  }
};

}  // namespace example::calculator

int main(int argc, char** argv) {
  std::vector<std::string> args =
      lpc::ParseFlags(argc, argv, "calculator_server --lpc_config=<file>");
  if (!args.empty()) {
    std::fprintf(stderr, "calculator_server: unexpected argument '%s'\n",
                 args[0].c_str());
    return 2;
  }
  example::calculator::CalculatorImpl calculator;
  return lpc::ServeUntilSignal("calculator_server", "calculator", &calculator);
}
