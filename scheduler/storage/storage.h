// Storage: the durable record of tasks behind the engine.
//
// The engine keeps its indexes in memory and tells a Storage what changed as a
// batch of mutations; Append returns once the batch is durable according to
// the store's Durability. At start the engine rebuilds its state with
// Recover. Implementations: memory_storage.h (tests, --durability=memory) and
// rocksdb_storage.h (--durability=sync|async); open_storage.h picks one from
// the flags.
//
//   std::vector<Mutation> batch;
//   batch.push_back(Mutation::PutTask(task));
//   batch.push_back(Mutation::PutMeta("event_seq", "42"));
//   absl::Status s = storage->Append(std::move(batch));
//   if (!s.ok()) { /* do not acknowledge the RPC */ }
//
// Every Storage is thread-safe: Append may be called from many threads at
// once, and concurrent batches are committed together (one WAL sync per
// group) so throughput grows with concurrency.
#ifndef TASKD_SCHEDULER_STORAGE_STORAGE_H_
#define TASKD_SCHEDULER_STORAGE_STORAGE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "api/taskd/v1/taskd.pb.h"

namespace taskd {

// When Append may return.
enum class Durability {
  kSync,    // after the batch is fsynced to the write-ahead log.
  kAsync,   // after the batch is written to the OS (survives a process
            // crash, not a machine crash).
  kMemory,  // after the batch is applied in memory (lost on exit).
};

// Parses a --durability flag value: "sync", "async" or "memory".
// INVALID_ARGUMENT naming the flag and the accepted values otherwise.
absl::StatusOr<Durability> ParseDurability(absl::string_view text);

// The flag spelling of `durability` ("sync", "async", "memory").
absl::string_view DurabilityName(Durability durability);

// One change to the stored state. Build with the factory functions.
struct Mutation {
  enum class Kind {
    kPutTask,
    kPutTaskApart,
    kPutTaskState,
    kDeleteTask,
    kPutMeta,
    kDeleteMeta
  };

  // Stores `task` under task.id() (which must be non-empty), replacing any
  // previous record of that id; the payload is part of the record.
  static Mutation PutTask(v1::Task task);
  // The same, with the payload kept apart from the record (RocksDbStorage:
  // under its own key), so that later changes of the task can be stored by
  // PutTaskState without writing the payload again. For large payloads: a
  // small one is cheaper rewritten whole. A task id is stored either by
  // PutTask or by PutTaskApart then PutTaskState, never both.
  static Mutation PutTaskApart(v1::Task task);
  // Stores a new state of a task stored by PutTaskApart, keeping its stored
  // payload (`task`'s own payload is ignored).
  static Mutation PutTaskState(v1::Task task);
  // The same three, with the task already serialized (`encoded`, whose id
  // must be `id`): for kPutTaskApart and kPutTaskState it leaves the payload
  // out, and kPutTaskApart carries the payload in `payload`. The producer
  // encodes where its data is (no message is built, moved and freed on
  // the committer's thread); ValidateBatch cannot check the id inside.
  static Mutation PutEncodedTask(Kind kind, std::string id,
                                 std::string encoded, std::string payload = "");
  // An encoded task mutation made back into one with `task` set (for
  // backends that keep messages); DATA_LOSS if `encoded` does not parse.
  absl::Status Decode();
  bool is_encoded() const { return !encoded.empty(); }

  // Removes the task `id` (its payload too); removing a missing task is not
  // an error.
  static Mutation DeleteTask(std::string id);
  // Stores `value` under the non-empty meta `key` (e.g. the last event
  // sequence number). Meta keys and task ids are separate namespaces.
  static Mutation PutMeta(std::string key, std::string value);
  static Mutation DeleteMeta(std::string key);

  Kind kind = Kind::kPutTask;
  std::string key;    // task id or meta key
  v1::Task task;        // kPutTask* only, unless encoded
  std::string encoded;  // kPutTask*: the task serialized instead of `task`
  std::string payload;  // kPutTaskApart encoded: the payload
  std::string value;    // kPutMeta only
};

// INVALID_ARGUMENT if a mutation in `batch` has an empty key or a task whose
// id is empty. Every Storage checks this before writing anything.
absl::Status ValidateBatch(const std::vector<Mutation>& batch);

// Counters for benchmarks and tests; syncs < appends shows group commit.
struct StorageStats {
  uint64_t appends = 0;    // successful non-empty Append calls
  uint64_t mutations = 0;  // mutations in those calls
  uint64_t commits = 0;    // write groups handed to the underlying store
  uint64_t syncs = 0;      // of those, the ones that fsynced the log
  uint64_t failed_appends = 0;
  // Gauge: Append calls queued for a commit now, including those in the
  // commit being written.
  uint64_t pending_appends = 0;
  // Records the last Recover moved aside (see Recover).
  uint64_t quarantined = 0;
};

class Storage {
 public:
  virtual ~Storage() = default;

  // Applies `batch` atomically (all mutations or none) and returns when it is
  // durable per the store's Durability. Concurrent callers may share one
  // commit. An empty batch returns OK at once. Errors: INVALID_ARGUMENT
  // (see ValidateBatch), FAILED_PRECONDITION after Close, UNAVAILABLE after a
  // write failed: the store is then read-only for the rest of its life and
  // the message carries the original error. On error nothing of the batch
  // may be assumed durable.
  virtual absl::Status Append(std::vector<Mutation> batch) = 0;

  // Visits the stored state as of some point during the call: first every
  // meta entry in key order, then every task in id (byte) order. An empty
  // std::function skips that kind of record. Visitors may call Append; they
  // do not see its effect.
  //
  // `on_task` may take the task it is given (swap it out) when it accepts
  // it; one it refuses must be left as it was.
  //
  // One bad record never stops recovery: a record that cannot be decoded, a
  // key the store does not know, or a record a visitor refuses with
  // DATA_LOSS is quarantined — moved aside under its key (kept for a human,
  // never visited again), logged, and counted in stats().quarantined — and
  // the visit goes on. Any other visitor error stops Recover and is
  // returned. DATA_LOSS only when the store itself is corrupt.
  virtual absl::Status Recover(
      const std::function<absl::Status(v1::Task&)>& on_task,
      const std::function<absl::Status(absl::string_view key,
                                       absl::string_view value)>& on_meta) = 0;

  // Reclaims the space of deleted and overwritten records (e.g. after
  // retention removed terminal tasks). May take a while; does not block
  // Append for long.
  virtual absl::Status Compact() = 0;

  // Waits for Appends in progress, then releases the store (files, locks).
  // Later calls fail with FAILED_PRECONDITION; a second Close is a no-op.
  // The destructor closes too, but cannot report an error.
  virtual absl::Status Close() = 0;

  virtual StorageStats stats() const = 0;
};

}  // namespace taskd

#endif  // TASKD_SCHEDULER_STORAGE_STORAGE_H_
