#include "tests/tsan/interposer.h"

#include <dlfcn.h>
#include <link.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <cstring>

namespace taskd::tsan {

void* RealSymbol(const char* mangled) {
  void* real = dlsym(RTLD_NEXT, mangled);
  if (real == nullptr) {
    std::fprintf(stderr,
                 "tsan interposer: no library after the executable defines "
                 "%s (%s); the wrapper cannot forward\n",
                 mangled, dlerror());
    std::abort();
  }
  return real;
}

namespace {

enum Annotate { kNone = 0, kAbslOnly = 1, kAll = 2 };

Annotate AnnotateMode() {
  // -1 = not read yet. Racing first readers compute the same value; relaxed
  // is enough (and invisible to TSan here anyway).
  static std::atomic<int> mode{-1};
  int value = mode.load(std::memory_order_relaxed);
  if (value < 0) {
    const char* env = std::getenv("TASKD_TSAN_ANNOTATE");
    value = kAll;
    if (env != nullptr && std::strcmp(env, "0") == 0) value = kNone;
    if (env != nullptr && std::strcmp(env, "absl") == 0) value = kAbslOnly;
    mode.store(value, std::memory_order_relaxed);
  }
  return static_cast<Annotate>(value);
}

}  // namespace

bool AnnotationsEnabled() { return AnnotateMode() != kNone; }

bool CqTagsEnabled() { return AnnotateMode() == kAll; }

namespace {

// Where the executable segments of libgpr, libgrpc and libgrpc++ are.
struct GrpcCode {
  static constexpr int kMaxRanges = 16;
  uintptr_t begin[kMaxRanges];
  uintptr_t end[kMaxRanges];
  int count = 0;
};

bool IsGrpcLibrary(const char* path) {
  const char* base = std::strrchr(path, '/');
  base = base == nullptr ? path : base + 1;
  return std::strncmp(base, "libgpr.so", 9) == 0 ||
         std::strncmp(base, "libgrpc.so", 10) == 0 ||
         std::strncmp(base, "libgrpc++.so", 12) == 0;
}

int AddGrpcRanges(dl_phdr_info* info, size_t, void* data) {
  auto* code = static_cast<GrpcCode*>(data);
  if (info->dlpi_name == nullptr || !IsGrpcLibrary(info->dlpi_name)) return 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& segment = info->dlpi_phdr[i];
    if (segment.p_type != PT_LOAD || !(segment.p_flags & PF_X)) continue;
    if (code->count == GrpcCode::kMaxRanges) return 1;
    code->begin[code->count] = info->dlpi_addr + segment.p_vaddr;
    code->end[code->count] = code->begin[code->count] + segment.p_memsz;
    ++code->count;
  }
  return 0;
}

const GrpcCode* HiddenGrpcCode() {
  // Built once, on first use, from libraries loaded at start-up; null when
  // gRPC's locks are shown (the default).
  static const GrpcCode* const code = []() -> const GrpcCode* {
    const char* env = std::getenv("TASKD_TSAN_GRPC_LOCKS");
    if (env == nullptr || std::strcmp(env, "0") != 0) return nullptr;
    auto* found = new GrpcCode;
    dl_iterate_phdr(AddGrpcRanges, found);
    return found;
  }();
  return code;
}

}  // namespace

bool IsHiddenGrpcCaller(const void* pc) {
  const GrpcCode* code = HiddenGrpcCode();
  if (code == nullptr) return false;
  const auto address = reinterpret_cast<uintptr_t>(pc);
  for (int i = 0; i < code->count; ++i) {
    if (address >= code->begin[i] && address < code->end[i]) return true;
  }
  return false;
}

}  // namespace taskd::tsan
