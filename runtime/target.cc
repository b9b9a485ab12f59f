// Target parsing and the channel factory registry.
#include "runtime/target.h"

#include <algorithm>
#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace lpc {
namespace {

struct Registry {
  std::mutex mu;
  std::map<std::string, ChannelFactory> factories;  // Guarded by mu.
};

Registry& GetRegistry() {
  static Registry* registry = new Registry;
  return *registry;
}

}  // namespace

absl::StatusOr<Target> ParseTarget(std::string_view target) {
  size_t colon = target.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "target '", std::string(target),
        "' has no scheme; expected local:<port>, grpc:<target>, "
        "auto:<port>@<grpc-target> or inprocess:<name>"));
  }
  Target t{std::string(target.substr(0, colon)),
           std::string(target.substr(colon + 1))};
  for (char c : t.scheme) {
    if (!(std::islower(static_cast<unsigned char>(c)) || c == '-')) {
      return absl::InvalidArgumentError(
          absl::StrCat("target '", std::string(target), "' has an invalid scheme"));
    }
  }
  if (t.address.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("target '", std::string(target), "' has an empty address"));
  }
  return t;
}

void RegisterChannelFactory(std::string scheme, ChannelFactory factory) {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.factories[std::move(scheme)] = std::move(factory);
}

std::vector<std::string> RegisteredSchemes() {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<std::string> out;
  for (const auto& [scheme, f] : r.factories) out.push_back(scheme);
  return out;
}

absl::StatusOr<std::shared_ptr<Channel>> CreateChannel(std::string_view target,
                                                       const ChannelArgs& args) {
  absl::StatusOr<Target> t = ParseTarget(target);
  if (!t.ok()) return t.status();
  ChannelFactory factory;
  {
    Registry& r = GetRegistry();
    std::lock_guard<std::mutex> lock(r.mu);
    auto it = r.factories.find(t->scheme);
    if (it == r.factories.end()) {
      std::vector<std::string> known;
      for (const auto& [scheme, f] : r.factories) known.push_back(scheme);
      return absl::UnimplementedError(absl::StrCat(
          "no transport for scheme '", t->scheme, "' in target '", std::string(target),
          "' is linked into this program (known: ",
          absl::StrJoin(known, ", "), ")"));
    }
    factory = it->second;
  }
  return factory(t->address, args);
}

}  // namespace lpc
