// The rules of the zero-copy byte payload, `buffer` (docs/zero-copy.md), in
// a method (idl/internal/file_analysis.h): it is an [in] parameter or the
// result of a unary method, at most one each way. Containers, stream
// elements, struct fields and constants refuse it where they are checked
// (sema_types.cc, sema_members.cc, sema_consts.cc).
#include <string>

#include "idl/frontend.h"
#include "idl/internal/file_analysis.h"

namespace lpc::idl::internal {

void FileAnalysis::CheckMethodBuffers(const MethodDecl& m) {
  const std::string method = "'" + m.name + "'";
  const TypeRef* first = nullptr;  // The method's first buffer, if any.
  if (m.return_type.kind == Kind::kBuffer) first = &m.return_type;
  const ParamDecl* in_buffer = nullptr;
  for (const ParamDecl& p : m.params) {
    if (p.type.kind != Kind::kBuffer) continue;
    const std::string param = "'" + p.name + "'";
    if (p.direction != ParamDirection::kIn) {
      Error(p.type.loc, "buffer parameter " + param + " of " + method +
                            " must be [in], not " +
                            DirectionName(p.direction) + ": " + kBufferPlaces);
      return;
    }
    if (in_buffer != nullptr) {
      Error(p.type.loc, "method " + method + " takes more than one buffer "
                        "parameter ('" + in_buffer->name + "' and " + param +
                        "): a method carries at most one buffer each way");
      return;
    }
    in_buffer = &p;
    if (first == nullptr) first = &p.type;
  }
  if (first == nullptr) return;
  if (m.streaming()) {
    Error(first->loc, "streaming method " + method + " cannot carry a "
                      "buffer: " + kBufferPlaces);
  } else if (m.async) {
    Error(first->loc, "[async] method " + method + " cannot carry a buffer: "
                      "an [async] handler's call carries its messages as "
                      "strings; declare it without [async]");
  }
}

}  // namespace lpc::idl::internal
