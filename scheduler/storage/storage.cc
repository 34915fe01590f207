#include "scheduler/storage/storage.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace taskd {

absl::StatusOr<Durability> ParseDurability(absl::string_view text) {
  if (text == "sync") return Durability::kSync;
  if (text == "async") return Durability::kAsync;
  if (text == "memory") return Durability::kMemory;
  return absl::InvalidArgumentError(absl::StrCat(
      "invalid --durability=\"", text, "\": want sync, async or memory"));
}

absl::string_view DurabilityName(Durability durability) {
  switch (durability) {
    case Durability::kSync:
      return "sync";
    case Durability::kAsync:
      return "async";
    case Durability::kMemory:
      return "memory";
  }
  return "unknown";
}

Mutation Mutation::PutTask(v1::Task task) {
  Mutation m;
  m.kind = Kind::kPutTask;
  m.key = task.id();
  m.task = std::move(task);
  return m;
}

Mutation Mutation::PutTaskApart(v1::Task task) {
  Mutation m = PutTask(std::move(task));
  m.kind = Kind::kPutTaskApart;
  return m;
}

Mutation Mutation::PutTaskState(v1::Task task) {
  Mutation m = PutTask(std::move(task));
  m.kind = Kind::kPutTaskState;
  return m;
}

Mutation Mutation::PutEncodedTask(Kind kind, std::string id,
                                  std::string encoded, std::string payload) {
  Mutation m;
  m.kind = kind;
  m.key = std::move(id);
  m.encoded = std::move(encoded);
  m.payload = std::move(payload);
  return m;
}

absl::Status Mutation::Decode() {
  if (!is_encoded()) return absl::OkStatus();
  if (!task.ParseFromString(encoded)) {
    return absl::DataLossError(
        absl::StrCat("encoded task ", key, " does not parse"));
  }
  encoded.clear();
  if (kind == Kind::kPutTaskApart) {
    task.mutable_spec()->mutable_payload()->swap(payload);
  }
  return absl::OkStatus();
}

Mutation Mutation::DeleteTask(std::string id) {
  Mutation m;
  m.kind = Kind::kDeleteTask;
  m.key = std::move(id);
  return m;
}

Mutation Mutation::PutMeta(std::string key, std::string value) {
  Mutation m;
  m.kind = Kind::kPutMeta;
  m.key = std::move(key);
  m.value = std::move(value);
  return m;
}

Mutation Mutation::DeleteMeta(std::string key) {
  Mutation m;
  m.kind = Kind::kDeleteMeta;
  m.key = std::move(key);
  return m;
}

absl::Status ValidateBatch(const std::vector<Mutation>& batch) {
  for (size_t i = 0; i < batch.size(); ++i) {
    const Mutation& m = batch[i];
    if (m.key.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("storage mutation ", i, " has an empty key"));
    }
    if ((m.kind == Mutation::Kind::kPutTask ||
         m.kind == Mutation::Kind::kPutTaskApart ||
         m.kind == Mutation::Kind::kPutTaskState) &&
        !m.is_encoded() && m.task.id() != m.key) {
      return absl::InvalidArgumentError(
          absl::StrCat("storage mutation ", i, " stores task \"", m.task.id(),
                       "\" under key \"", m.key, "\""));
    }
  }
  return absl::OkStatus();
}

}  // namespace taskd
