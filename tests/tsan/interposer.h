// Shared pieces of the ThreadSanitizer interposer (absl_sync_interposer.cc,
// grpc_cq_interposer.cc), linked into every binary of the `tsan` build only
// (`--custom_malloc=//tests/tsan:interposer` in .bazelrc).
//
// Debian's abseil and gRPC are shared libraries built without
// -fsanitize=thread: their synchronisation (futexes, uninstrumented atomics)
// is invisible to TSan. The interposer defines the same out-of-line symbols
// in the executable, which the dynamic linker prefers over the libraries'
// own (also for the libraries' calls to each other, made through their PLT);
// each definition tells TSan the happens-before the real function gives and
// calls the real one, found with dlsym(RTLD_NEXT, ...).
//
// Environment switches, for the self-test and for triage:
//   TASKD_TSAN_ANNOTATE=0   no annotations at all (the wrappers only
//                           forward): without them TSan must report the
//                           accesses they order.
//   TASKD_TSAN_ANNOTATE=absl only abseil's, not the completion-queue tags.
//   TASKD_TSAN_GRPC_LOCKS=0 gRPC's own use of absl::Mutex (from libgpr,
//                           libgrpc, libgrpc++) is not shown to TSan: only
//                           the completion-queue tags order gRPC hand-offs,
//                           as gRPC's API promises. Finer than the default,
//                           which also orders threads through gRPC's
//                           internal locks and so can hide races.
//
// This code is compiled without TSan instrumentation (-fno-sanitize=thread):
// its own bookkeeping is not a program access to check.
#ifndef TASKD_TESTS_TSAN_INTERPOSER_H_
#define TASKD_TESTS_TSAN_INTERPOSER_H_

#include <string>

namespace taskd::tsan {

// The mangled name of an abseil symbol: abseil's nested-name prefix
// ("_ZN4absl7debian3", "_ZNK..." for a const member function) followed by
// `rest` ("5Mutex4LockEv"). The inline namespace is the one the headers
// were configured with (absl/base/options.h).
std::string AbslSymbolName(const char* rest, bool const_member = false);

// The real definition of `mangled` in a library loaded after the
// executable. Aborts with a message naming the symbol when none has it:
// a wrapper that silently did nothing would hide races.
void* RealSymbol(const char* mangled);

// Whether to annotate abseil (false when TASKD_TSAN_ANNOTATE=0) and
// completion-queue tags (also false when it is "absl").
bool AnnotationsEnabled();
bool CqTagsEnabled();

// True when `pc` (a return address) is in a library installed on the
// system (abseil, gRPC, libc's exit handlers...), not in the program.
bool IsSystemLibraryCode(const void* pc);

// True when `pc` (a return address) is in gRPC's code and
// TASKD_TSAN_GRPC_LOCKS=0: a lock gRPC takes for itself, not shown to TSan.
bool IsHiddenGrpcCaller(const void* pc);

}  // namespace taskd::tsan

#endif  // TASKD_TESTS_TSAN_INTERPOSER_H_
