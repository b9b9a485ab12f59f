// TempDir: a fresh directory under /tmp for one test, removed with what it
// holds when the object goes away.
#ifndef LPC_TESTING_TEMP_DIR_H_
#define LPC_TESTING_TEMP_DIR_H_

#include <stdlib.h>

#include <filesystem>
#include <string>

namespace lpc::testing {

class TempDir {
 public:
  // `prefix` names the directory: /tmp/<prefix>XXXXXX.
  explicit TempDir(const std::string& prefix = "lpc_test_") {
    std::string tmpl = "/tmp/" + prefix + "XXXXXX";
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    if (!path_.empty()) std::filesystem::remove_all(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }  // Empty on failure.

 private:
  std::string path_;
};

}  // namespace lpc::testing

#endif  // LPC_TESTING_TEMP_DIR_H_
