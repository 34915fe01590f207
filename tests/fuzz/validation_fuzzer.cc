// Fuzzes request validation: any bytes as a TaskSpec, and as the names and
// ids a client sends. Validation must answer OK or INVALID_ARGUMENT naming
// a field, never crash, and a spec it accepts must give a task the engine
// can store and parse back.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "api/strings/utf8.h"
#include "api/taskd/v1/taskd.pb.h"
#include "scheduler/clock.h"
#include "scheduler/engine.h"
#include "scheduler/validation.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  for (auto check : {taskd::ValidateQueueName, taskd::ValidateTypeName}) {
    absl::Status s = check(text, "field");
    if (!s.ok() && !absl::IsInvalidArgument(s)) std::abort();
    if (!taskd::IsValidUtf8(s.message())) std::abort();  // it quotes input
  }
  absl::Status id = taskd::ValidateTaskId(text, "id");
  if (!taskd::IsValidUtf8(id.message())) std::abort();

  taskd::v1::TaskSpec spec;
  if (!spec.ParseFromArray(data, static_cast<int>(size))) return 0;
  taskd::ValidationLimits limits;
  absl::Status s = taskd::ValidateTaskSpec(spec, limits, "task");
  if (!s.ok()) {
    if (!absl::IsInvalidArgument(s)) std::abort();
    if (!absl::StartsWith(s.message(), "task")) std::abort();  // names it
    if (!taskd::IsValidUtf8(s.message())) std::abort();
    return 0;
  }
  // Accepted: the engine stores it and the record parses back.
  spec.clear_depends_on();  // dependencies must exist; not the point here
  taskd::FakeClock clock;
  taskd::Engine engine(taskd::EngineOptions{}, &clock);
  auto submitted = engine.Submit(spec);
  if (!submitted.ok()) std::abort();
  taskd::v1::Task parsed;
  if (!parsed.ParseFromString(submitted->task.SerializeAsString())) {
    std::abort();
  }
  if (parsed.schedule_time().seconds() > 253'402'300'799) std::abort();
  return 0;
}
