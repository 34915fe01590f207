#include "scheduler/task_id.h"

#include <algorithm>

#include "absl/random/random.h"

namespace taskd {
namespace {

constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

}  // namespace

TaskIdGenerator::TaskIdGenerator(uint64_t seed) {
  if (seed == 0) {
    absl::BitGen gen;
    counter_hi_ = absl::Uniform<uint64_t>(gen) & 0x7fff;  // headroom to count
    counter_lo_ = absl::Uniform<uint64_t>(gen);
  } else {
    counter_hi_ = seed & 0x7fff;
    counter_lo_ = seed * 0x9E3779B97F4A7C15ull;
  }
}

std::string TaskIdGenerator::Next(absl::Time now) {
  uint64_t ms = static_cast<uint64_t>(
      std::max<int64_t>(0, absl::ToUnixMillis(now)));
  uint64_t hi, lo;
  {
    absl::MutexLock lock(&mu_);
    ms = std::max(ms, last_ms_);
    last_ms_ = ms;
    if (++counter_lo_ == 0) counter_hi_ = (counter_hi_ + 1) & 0xffff;
    // 128 bits: ms(48) | counter_hi(16) | counter_lo(64).
    hi = (ms << 16) | counter_hi_;
    lo = counter_lo_;
  }
  // 26 base32 digits cover 130 bits; the top two are zero.
  std::string id(26, '0');
  for (int i = 25; i >= 0; --i) {
    id[i] = kAlphabet[lo & 31];
    lo = (lo >> 5) | (hi << 59);
    hi >>= 5;
  }
  return id;
}

}  // namespace taskd
