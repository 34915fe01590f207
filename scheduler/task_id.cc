#include "scheduler/task_id.h"

#include <algorithm>
#include <cstdint>
#include <tuple>

#include "absl/random/random.h"

namespace taskd {
namespace {

constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

// Digit values by character; -1 for what is not a digit.
struct DigitTable {
  int8_t value[256];
  constexpr DigitTable() : value() {
    for (int c = 0; c < 256; ++c) value[c] = -1;
    for (int d = 0; d < 32; ++d) {
      value[static_cast<unsigned char>(kAlphabet[d])] = static_cast<int8_t>(d);
    }
  }
};
constexpr DigitTable kDigits;

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

std::optional<TaskKey> TaskKeyOf(absl::string_view id) {
  if (id.size() != 26) return std::nullopt;
  TaskKey key;  // 130 bits, as Next() lays them out; the top two are zero
  for (char c : id) {
    const int d = kDigits.value[static_cast<unsigned char>(c)];
    if (d < 0) return std::nullopt;
    if ((key.hi >> 59) != 0) return std::nullopt;  // past 128 bits
    key.hi = (key.hi << 5) | (key.lo >> 59);
    key.lo = (key.lo << 5) | static_cast<uint64_t>(d);
  }
  return key;
}


void TaskIdGenerator::AdvancePast(absl::string_view id) {
  const std::optional<TaskKey> key = TaskKeyOf(id);
  if (!key) return;
  const uint64_t hi = key->hi, lo = key->lo;
  const uint64_t ms = hi >> 16;
  const uint64_t counter_hi = hi & 0xffff;
  absl::MutexLock lock(&mu_);
  if (std::tie(ms, counter_hi, lo) >
      std::tie(last_ms_, counter_hi_, counter_lo_)) {
    last_ms_ = ms;
    counter_hi_ = counter_hi;
    counter_lo_ = lo;
  }
}

std::string TaskIdGenerator::Next(absl::Time now) {
  return TaskIdOf(NextKey(now));
}

TaskKey TaskIdGenerator::NextKey(absl::Time now) {
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
  return TaskKey{hi, lo};
}

std::string TaskIdOf(const TaskKey& key) {
  // 26 base32 digits cover 130 bits; the top two are zero.
  uint64_t hi = key.hi, lo = key.lo;
  std::string id(26, '0');
  for (int i = 25; i >= 0; --i) {
    id[i] = kAlphabet[lo & 31];
    lo = (lo >> 5) | (hi << 59);
    hi >>= 5;
  }
  return id;
}

}  // namespace taskd
