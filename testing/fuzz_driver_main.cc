// A small, deterministic stand-in for libFuzzer's main(), for running fuzz
// targets as ordinary tests under g++ with sanitizers.
//
// Links with any source that defines LLVMFuzzerTestOneInput (and optionally
// LLVMFuzzerInitialize). It runs every file named on the command line (files,
// or directories searched recursively) and in $LPC_FUZZ_CORPUS (paths
// separated by ':'), then $LPC_FUZZ_ITERATIONS (default 2000) inputs derived
// from them by pseudo-random byte flips, inserts, deletes, duplications and
// splices, stopping early after $LPC_FUZZ_SECONDS (default 10) seconds. The
// mutations depend only on $LPC_FUZZ_SEED (default 1) and the corpus, so a
// failure reproduces by running again with the same environment. Prints one
// summary line; a crash or sanitizer report fails the process.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv)
    __attribute__((weak));

namespace {

// Inputs larger than this are not read as seeds, nor grown by mutation.
constexpr size_t kMaxInputSize = 1 << 20;
constexpr size_t kMaxMutatedSize = 64 << 10;

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  return std::strtoull(value, nullptr, 10);
}

// splitmix64: small, fast, and the same everywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform-ish in [0, n); n must be > 0.
  size_t Below(size_t n) { return static_cast<size_t>(Next() % n); }

 private:
  uint64_t state_;
};

void AddPath(const std::filesystem::path& path,
             std::vector<std::string>* seeds) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    std::vector<std::filesystem::path> entries;
    for (const auto& entry :
         std::filesystem::recursive_directory_iterator(path, ec)) {
      if (entry.is_regular_file(ec)) entries.push_back(entry.path());
    }
    std::sort(entries.begin(), entries.end());  // Deterministic order.
    for (const auto& p : entries) AddPath(p, seeds);
    return;
  }
  if (!std::filesystem::is_regular_file(path, ec)) {
    std::fprintf(stderr, "fuzz_driver: skipping %s (not a file)\n",
                 path.c_str());
    return;
  }
  if (std::filesystem::file_size(path, ec) > kMaxInputSize) return;
  std::ifstream in(path, std::ios::binary);
  seeds->emplace_back(std::istreambuf_iterator<char>(in),
                      std::istreambuf_iterator<char>());
}

void RunOne(const std::string& input) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()),
                         input.size());
}

std::string Mutate(const std::vector<std::string>& seeds, Rng& rng) {
  std::string s = seeds[rng.Below(seeds.size())];
  size_t rounds = 1 + rng.Below(4);
  for (size_t r = 0; r < rounds; ++r) {
    switch (rng.Below(6)) {
      case 0:  // Flip a bit.
        if (!s.empty()) {
          s[rng.Below(s.size())] ^= static_cast<char>(1 << rng.Below(8));
        }
        break;
      case 1: {  // Insert a random byte, often a structural character.
        static constexpr char kInteresting[] = "{}<>;,.=@[]()\"/*\n 0-_";
        char c = rng.Below(2) == 0
                     ? kInteresting[rng.Below(sizeof(kInteresting) - 1)]
                     : static_cast<char>(rng.Next());
        s.insert(s.begin() + rng.Below(s.size() + 1), c);
        break;
      }
      case 2:  // Delete a range.
        if (!s.empty()) {
          size_t at = rng.Below(s.size());
          s.erase(at, 1 + rng.Below(std::min<size_t>(16, s.size() - at)));
        }
        break;
      case 3:  // Overwrite a byte.
        if (!s.empty()) s[rng.Below(s.size())] = static_cast<char>(rng.Next());
        break;
      case 4:  // Duplicate a chunk in place.
        if (!s.empty()) {
          size_t at = rng.Below(s.size());
          size_t len = 1 + rng.Below(std::min<size_t>(64, s.size() - at));
          std::string chunk = s.substr(at, len);
          s.insert(rng.Below(s.size() + 1), chunk);
        }
        break;
      default: {  // Splice: a prefix of this input and a suffix of another.
        const std::string& other = seeds[rng.Below(seeds.size())];
        size_t cut = rng.Below(s.size() + 1);
        size_t from = rng.Below(other.size() + 1);
        s = s.substr(0, cut) + other.substr(from);
        break;
      }
    }
    if (s.size() > kMaxMutatedSize) s.resize(kMaxMutatedSize);
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  std::vector<std::string> seeds;
  for (int i = 1; i < argc; ++i) AddPath(argv[i], &seeds);
  if (const char* env = std::getenv("LPC_FUZZ_CORPUS")) {
    std::string list = env;
    size_t start = 0;
    while (start <= list.size()) {
      size_t colon = list.find(':', start);
      if (colon == std::string::npos) colon = list.size();
      if (colon > start) AddPath(list.substr(start, colon - start), &seeds);
      start = colon + 1;
    }
  }
  const uint64_t iterations = EnvOr("LPC_FUZZ_ITERATIONS", 2000);
  const uint64_t seconds = EnvOr("LPC_FUZZ_SECONDS", 10);
  const uint64_t seed = EnvOr("LPC_FUZZ_SEED", 1);
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::seconds(seconds);

  RunOne("");  // The empty input is always worth a try.
  for (const std::string& s : seeds) RunOne(s);
  if (seeds.empty()) seeds.push_back("");

  Rng rng(seed);
  uint64_t done = 0;
  for (; done < iterations; ++done) {
    if ((done & 15) == 0 && std::chrono::steady_clock::now() > deadline) break;
    RunOne(Mutate(seeds, rng));
  }
  double elapsed = std::chrono::duration<double>(
                       std::chrono::steady_clock::now() - start)
                       .count();
  std::printf("fuzz_driver: %zu seed inputs, %llu of %llu mutations (seed %llu) "
              "in %.2fs%s\n",
              seeds.size(), static_cast<unsigned long long>(done),
              static_cast<unsigned long long>(iterations),
              static_cast<unsigned long long>(seed), elapsed,
              done < iterations ? ", stopped by the time limit" : "");
  return 0;
}
