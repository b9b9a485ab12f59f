// FNV-1a, 64 bits: the checksum the frames example's server computes and
// its client checks.
#ifndef EXAMPLES_FRAMES_FNV_H_
#define EXAMPLES_FRAMES_FNV_H_

#include <cstdint>
#include <string_view>

namespace example::frames {

inline uint64_t Fnv1a64(std::string_view bytes) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace example::frames

#endif  // EXAMPLES_FRAMES_FNV_H_
