#include "tests/tsan/interposer.h"

#include <dlfcn.h>
#include <link.h>

#include <atomic>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/base/options.h"

namespace taskd::tsan {

#define TASKD_TSAN_STR2(x) #x
#define TASKD_TSAN_STR(x) TASKD_TSAN_STR2(x)

std::string AbslSymbolName(const char* rest, bool const_member) {
  static constexpr char kInlineNamespace[] =
      TASKD_TSAN_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  std::string name = const_member ? "_ZNK4absl" : "_ZN4absl";
  name += std::to_string(sizeof(kInlineNamespace) - 1);
  name += kInlineNamespace;
  name += rest;
  return name;
}

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

bool IsSystemLibraryCode(const void* pc) {
  Dl_info info;
  if (dladdr(pc, &info) == 0 || info.dli_fname == nullptr) return false;
  for (const char* dir : {"/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/"}) {
    if (std::strncmp(info.dli_fname, dir, std::strlen(dir)) == 0) return true;
  }
  return false;
}

bool IsHiddenGrpcCaller(const void* pc) {
  const GrpcCode* code = HiddenGrpcCode();
  if (code == nullptr) return false;
  const auto address = reinterpret_cast<uintptr_t>(pc);
  for (int i = 0; i < code->count; ++i) {
    if (address >= code->begin[i] && address < code->end[i]) return true;
  }
  return false;
}

namespace {

// The wrappers work only if the dynamic linker binds every caller (abseil
// and gRPC included) to the executable's definitions. Checked once at
// start-up on one symbol of each library: they are all linked the same way.
__attribute__((constructor)) void CheckInterposition() {
  Dl_info here;
  if (dladdr(reinterpret_cast<void*>(&RealSymbol), &here) == 0) return;
  const std::string names[] = {
      AbslSymbolName("5Mutex4LockEv"),
      "_Z16grpc_cq_begin_opP21grpc_completion_queuePv",
      "grpc_completion_queue_next",
  };
  for (const std::string& name : names) {
    void* bound = dlsym(RTLD_DEFAULT, name.c_str());
    Dl_info where;
    if (bound == nullptr || dladdr(bound, &where) == 0) continue;
    if (where.dli_fbase != here.dli_fbase) {
      std::fprintf(stderr,
                   "tsan interposer: %s binds to %s, not to the wrapper in "
                   "%s: link //tests/tsan:interposer into the executable\n",
                   name.c_str(), where.dli_fname, here.dli_fname);
      std::abort();
    }
  }
}

}  // namespace

}  // namespace taskd::tsan
