#include "services/call.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"

namespace taskd {

CallSite CallSites::For(absl::string_view service, absl::string_view method) {
  CallSite site;
  site.live = &live_;
  if (metrics_ == nullptr) return site;
  const std::string path = absl::StrCat("/", service, "/", method);
  site.cells = metrics_->Find(path.c_str());
  if (site.cells == nullptr) {
    std::fprintf(stderr,
                 "taskd: BUG: %s is served but has no metrics (add its "
                 "service to the metrics table)\n",
                 path.c_str());
    std::abort();
  }
  return site;
}

}  // namespace taskd
