// Doc comments carried from the IDL into generated files.
#ifndef LPC_CODEGEN_COMMENTS_H_
#define LPC_CODEGEN_COMMENTS_H_

#include <string>
#include <vector>

namespace lpc::codegen {

// The lines of `doc`, made safe to emit as // comments: control bytes become
// spaces, and trailing spaces and backslashes are dropped (a trailing
// backslash would continue the comment onto the next line of code, and
// libprotoc copies .proto comments into the .pb.h as // lines). Empty for an
// empty `doc`.
inline std::vector<std::string> SafeCommentLines(const std::string& doc) {
  std::vector<std::string> lines;
  if (doc.empty()) return lines;
  size_t start = 0;
  while (start <= doc.size()) {
    size_t nl = doc.find('\n', start);
    if (nl == std::string::npos) nl = doc.size();
    std::string line = doc.substr(start, nl - start);
    for (char& c : line) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
    }
    while (!line.empty() && (line.back() == ' ' || line.back() == '\\')) {
      line.pop_back();
    }
    lines.push_back(std::move(line));
    start = nl + 1;
  }
  return lines;
}

}  // namespace lpc::codegen

#endif  // LPC_CODEGEN_COMMENTS_H_
