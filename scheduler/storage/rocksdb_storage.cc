#include "scheduler/storage/rocksdb_storage.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/base/internal/raw_logging.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/options.h"
#include "rocksdb/utilities/table_properties_collectors.h"
#include "rocksdb/write_batch.h"

namespace taskd {
namespace {

constexpr char kTaskPrefix[] = "t/";
// A payload stored by PutTaskApart is kept apart from its record, under
// "t/<id>/p"; PutTaskState rewrites only the record. The payload key sorts
// right after its record's (ids have a fixed length and alphabet), so
// recovery reads the two in one pass. PutTask keeps the payload inline.
constexpr char kPayloadSuffix[] = "/p";
constexpr char kMetaPrefix[] = "m/";
// Records moved aside by recovery keep their whole key after this prefix.
constexpr char kQuarantinePrefix[] = "q/";

rocksdb::Slice ToSlice(absl::string_view s) {
  return rocksdb::Slice(s.data(), s.size());
}

absl::string_view ToView(const rocksdb::Slice& s) {
  return absl::string_view(s.data(), s.size());
}

// A mutation serialized on the caller's thread, so that the group-commit
// leader only copies bytes.
struct EncodedOp {
  bool is_delete = false;
  std::string key;
  std::string value;
};

// Maps an error from DB::Open to a status that tells the operator what to do.
absl::Status OpenError(const std::string& dir, const rocksdb::Status& s) {
  const std::string text = s.ToString();
  if (s.IsIOError() && absl::StrContains(text, "LOCK")) {
    return absl::FailedPreconditionError(absl::StrCat(
        "data directory ", dir,
        " is in use by another taskd process (RocksDB: ", text, ")"));
  }
  if (s.IsCorruption()) {
    return absl::DataLossError(
        absl::StrCat("data directory ", dir,
                     " is corrupt; restore it from a backup or "
                     "move it away (RocksDB: ",
                     text, ")"));
  }
  if (s.IsNoSpace()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("no space left to open data directory ", dir,
                     " (RocksDB: ", text, ")"));
  }
  if (s.IsPathNotFound() || s.IsInvalidArgument() || s.IsNotSupported()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot open data directory ", dir, " (RocksDB: ", text, ")"));
  }
  return absl::UnavailableError(absl::StrCat("cannot open data directory ", dir,
                                             " (RocksDB: ", text, ")"));
}

absl::Status PathError(absl::string_view what, const std::error_code& ec) {
  std::string message = absl::StrCat(what, ": ", ec.message());
  if (ec == std::errc::permission_denied ||
      ec == std::errc::operation_not_permitted ||
      ec == std::errc::read_only_file_system) {
    return absl::PermissionDeniedError(message);
  }
  return absl::FailedPreconditionError(message);
}

// Checks what RocksDB would report obscurely: that `dir` is (or can become)
// a directory this process may read and write.
absl::Status PrepareDataDir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::file_status st = fs::status(dir, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return PathError(absl::StrCat("cannot access data directory ", dir), ec);
  }
  if (!fs::exists(st)) {
    fs::create_directories(dir, ec);
    if (ec) {
      return PathError(absl::StrCat("cannot create data directory ", dir), ec);
    }
  } else if (!fs::is_directory(st)) {
    return absl::FailedPreconditionError(
        absl::StrCat("data directory ", dir, " exists and is not a directory"));
  }
  if (access(dir.c_str(), R_OK | W_OK | X_OK) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("data directory ", dir,
                     " is not readable and writable by this process: ",
                     std::strerror(errno)));
  }
  return absl::OkStatus();
}

class RocksDbStorage final : public Storage {
 public:
  RocksDbStorage(const RocksDbStorageOptions& options,
                 std::unique_ptr<rocksdb::DB> db)
      : data_dir_(options.data_dir),
        sync_(options.sync),
        max_group_bytes_(options.max_group_bytes),
        db_(std::move(db)) {}

  ~RocksDbStorage() override { Close().IgnoreError(); }

  absl::Status Append(std::vector<Mutation> batch) override
      ABSL_LOCKS_EXCLUDED(mu_);

  absl::Status Recover(
      const std::function<absl::Status(v1::Task&)>& on_task,
      const std::function<absl::Status(absl::string_view, absl::string_view)>&
          on_meta) override ABSL_LOCKS_EXCLUDED(mu_);

  absl::Status Compact() override ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Close() override ABSL_LOCKS_EXCLUDED(mu_);

  StorageStats stats() const override ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    StorageStats stats = stats_;
    stats.pending_appends = writers_.size();
    return stats;
  }

 private:
  // One caller of Append waiting in writers_.
  struct Writer {
    Writer(const std::vector<EncodedOp>* ops, size_t mutations)
        : ops(ops), mutations(mutations) {
      for (const EncodedOp& op : *ops) bytes += op.key.size() + op.value.size();
    }
    const std::vector<EncodedOp>* const ops;
    const size_t mutations;  // what the caller asked (a task: 1 or 2 ops)
    size_t bytes = 0;
    // Set by the leader that committed this writer's batch.
    absl::Status status;
    bool done = false;
    absl::CondVar cv;
  };

  // Registers a Recover/Compact so that Close waits for it.
  absl::Status BeginOp() ABSL_LOCKS_EXCLUDED(mu_);
  void EndOp() ABSL_LOCKS_EXCLUDED(mu_);
  bool Idle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return writers_.empty() && ops_in_flight_ == 0;
  }
  absl::Status ReadOnlyError() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return absl::UnavailableError(absl::StrCat(
        "storage in ", data_dir_,
        " is read-only after a write failed: ", write_error_.message()));
  }

  // Constant after construction.
  const std::string data_dir_;
  const bool sync_;
  const size_t max_group_bytes_;

  mutable absl::Mutex mu_;
  // Used without mu_ by the group-commit leader and by registered
  // Recover/Compact calls; Close resets it under mu_ only once Idle().
  std::unique_ptr<rocksdb::DB> db_;

  // Append callers in arrival order. Only the front one (the leader) writes;
  // the others wait until a leader committed their batch or they reach the
  // front. The leader reads the batches of the writers it took without mu_:
  // they stay queued, and their owners blocked, until it pops them.
  std::deque<Writer*> writers_ ABSL_GUARDED_BY(mu_);
  // The first failed write; once set, the store is read-only.
  absl::Status write_error_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  int ops_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  StorageStats stats_ ABSL_GUARDED_BY(mu_);
};

absl::Status RocksDbStorage::Append(std::vector<Mutation> batch) {
  if (batch.empty()) return absl::OkStatus();
  absl::Status status = ValidateBatch(batch);
  std::vector<EncodedOp> ops;
  if (status.ok()) {
    ops.reserve(batch.size());
    for (Mutation& m : batch) {
      EncodedOp op;
      switch (m.kind) {
        case Mutation::Kind::kPutTask:
        case Mutation::Kind::kPutTaskApart:
        case Mutation::Kind::kPutTaskState: {
          std::string payload;
          op.key = absl::StrCat(kTaskPrefix, m.key);
          const bool encoded = m.is_encoded();
          if (encoded) {
            op.value = std::move(m.encoded);  // the payload already apart
            payload = std::move(m.payload);
          } else if (m.kind != Mutation::Kind::kPutTask) {
            m.task.mutable_spec()->mutable_payload()->swap(payload);
          }
          if (!encoded && !m.task.SerializeToString(&op.value)) {
            status = absl::InternalError(
                absl::StrCat("cannot serialize task ", m.key));
          }
          if (m.kind == Mutation::Kind::kPutTaskApart) {
            EncodedOp apart;
            apart.key = absl::StrCat(op.key, kPayloadSuffix);
            apart.value = std::move(payload);
            ops.push_back(std::move(apart));
          }
          break;
        }
        case Mutation::Kind::kDeleteTask: {
          op.is_delete = true;
          op.key = absl::StrCat(kTaskPrefix, m.key);
          EncodedOp apart;
          apart.is_delete = true;
          apart.key = absl::StrCat(op.key, kPayloadSuffix);
          ops.push_back(std::move(apart));
          break;
        }
        case Mutation::Kind::kPutMeta:
          op.key = absl::StrCat(kMetaPrefix, m.key);
          op.value = std::move(m.value);
          break;
        case Mutation::Kind::kDeleteMeta:
          op.is_delete = true;
          op.key = absl::StrCat(kMetaPrefix, m.key);
          break;
      }
      ops.push_back(std::move(op));
    }
  }

  Writer w(&ops, batch.size());
  absl::MutexLock lock(&mu_);
  if (!status.ok()) {
    ++stats_.failed_appends;
    return status;
  }
  if (closed_) {
    ++stats_.failed_appends;
    return absl::FailedPreconditionError("storage is closed");
  }
  if (!write_error_.ok()) {
    ++stats_.failed_appends;
    return ReadOnlyError();
  }
  writers_.push_back(&w);
  while (!w.done && &w != writers_.front()) w.cv.Wait(&mu_);
  if (w.done) return w.status;

  // This caller leads: commit everything queued, up to max_group_bytes_.
  std::vector<Writer*> group = {&w};
  size_t group_bytes = w.bytes;
  for (size_t i = 1; i < writers_.size(); ++i) {
    Writer* next = writers_[i];
    if (group_bytes + next->bytes > max_group_bytes_) break;
    group_bytes += next->bytes;
    group.push_back(next);
  }

  absl::Status result;
  if (!write_error_.ok()) {
    // An earlier group failed while these callers waited.
    result = ReadOnlyError();
  } else {
    mu_.Unlock();
    rocksdb::WriteBatch wb(group_bytes + 64 * group.size());
    rocksdb::Status s;
    for (const Writer* member : group) {
      for (const EncodedOp& op : *member->ops) {
        s = op.is_delete ? wb.Delete(ToSlice(op.key))
                         : wb.Put(ToSlice(op.key), ToSlice(op.value));
        if (!s.ok()) break;
      }
      if (!s.ok()) break;
    }
    if (s.ok()) {
      rocksdb::WriteOptions write_options;
      write_options.sync = sync_;
      s = db_->Write(write_options, &wb);
    }
    mu_.Lock();
    ++stats_.commits;
    if (sync_) ++stats_.syncs;
    if (!s.ok()) {
      write_error_ = absl::UnavailableError(s.ToString());
      result = ReadOnlyError();
    }
  }

  for (Writer* member : group) {
    writers_.pop_front();
    if (result.ok()) {
      ++stats_.appends;
      stats_.mutations += member->mutations;
    } else {
      ++stats_.failed_appends;
    }
    if (member != &w) {
      member->status = result;
      member->done = true;
      member->cv.Signal();
    }
  }
  if (!writers_.empty()) writers_.front()->cv.Signal();
  return result;
}

absl::Status RocksDbStorage::BeginOp() {
  absl::MutexLock lock(&mu_);
  if (closed_) return absl::FailedPreconditionError("storage is closed");
  ++ops_in_flight_;
  return absl::OkStatus();
}

void RocksDbStorage::EndOp() {
  absl::MutexLock lock(&mu_);
  --ops_in_flight_;
}

absl::Status RocksDbStorage::Recover(
    const std::function<absl::Status(v1::Task&)>& on_task,
    const std::function<absl::Status(absl::string_view, absl::string_view)>&
        on_meta) {
  absl::Status status = BeginOp();
  if (!status.ok()) return status;

  rocksdb::ReadOptions read_options;
  read_options.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options));
  v1::Task task;
  rocksdb::WriteBatch quarantine;
  uint64_t quarantined = 0;
  // `counted`: a task's payload key goes with its record, counted once.
  const auto set_aside_value = [&](absl::string_view key,
                                   absl::string_view value,
                                   absl::string_view why, bool counted = true) {
    ABSL_RAW_LOG(WARNING,
                 "data directory %s: record \"%s\" quarantined as \"%s%s\": "
                 "%s",
                 data_dir_.c_str(), absl::CHexEscape(key).c_str(),
                 kQuarantinePrefix, absl::CHexEscape(key).c_str(),
                 std::string(why).c_str());
    quarantine.Put(absl::StrCat(kQuarantinePrefix, key), ToSlice(value));
    quarantine.Delete(ToSlice(key));
    if (counted) ++quarantined;
  };
  // The record under the iterator.
  const auto set_aside = [&](absl::string_view key, absl::string_view why) {
    set_aside_value(key, ToView(it->value()), why);
  };
  // A visitor's DATA_LOSS sets the record aside; other errors stop.
  const auto visited = [&](absl::string_view key, absl::Status s) {
    if (s.code() != absl::StatusCode::kDataLoss) return s;
    set_aside(key, s.message());
    return absl::OkStatus();
  };
  // A task record is held until the next key is read, which may be its
  // payload; then the task goes to on_task.
  bool held = false;
  std::string held_key;
  const auto deliver_held = [&](bool with_payload) {
    if (!held) return;
    held = false;
    absl::Status s = on_task(task);
    if (s.code() != absl::StatusCode::kDataLoss) {
      status = s;
      return;
    }
    // Kept aside as it was stored: the record without the payload kept
    // apart (set aside under its own key).
    std::string record;
    if (with_payload) task.mutable_spec()->clear_payload();
    task.SerializeToString(&record);
    set_aside_value(held_key, record, s.message());
    if (with_payload) {
      set_aside_value(ToView(it->key()), ToView(it->value()), s.message(),
                      /*counted=*/false);
    }
  };
  // Keys sort "m/" < "q/" < "t/", so meta entries come first.
  for (it->SeekToFirst(); status.ok() && it->Valid(); it->Next()) {
    const absl::string_view key = ToView(it->key());
    if (held && key.size() == held_key.size() + sizeof(kPayloadSuffix) - 1 &&
        absl::StartsWith(key, held_key) && absl::EndsWith(key, kPayloadSuffix)) {
      task.mutable_spec()->set_payload(it->value().data(), it->value().size());
      deliver_held(/*with_payload=*/true);
      continue;
    }
    deliver_held(/*with_payload=*/false);
    if (!status.ok()) break;
    if (absl::StartsWith(key, kMetaPrefix)) {
      if (on_meta) {
        status = visited(key, on_meta(key.substr(sizeof(kMetaPrefix) - 1),
                                      ToView(it->value())));
      }
    } else if (absl::StartsWith(key, kTaskPrefix)) {
      if (!on_task) continue;
      const absl::string_view id = key.substr(sizeof(kTaskPrefix) - 1);
      if (absl::EndsWith(id, kPayloadSuffix)) {
        set_aside(key, "payload of no task record");
      } else if (!task.ParseFromArray(it->value().data(),
                                      static_cast<int>(it->value().size())) ||
                 task.id() != id) {
        set_aside(key, "undecodable task record");
      } else {
        held = true;
        held_key = std::string(key);
      }
    } else if (!absl::StartsWith(key, kQuarantinePrefix)) {
      set_aside(key, "unexpected key");
    }
  }
  if (status.ok()) deliver_held(/*with_payload=*/false);
  if (status.ok() && !it->status().ok()) {
    const rocksdb::Status& s = it->status();
    status =
        s.IsCorruption()
            ? absl::DataLossError(absl::StrCat("data directory ", data_dir_,
                                               " is corrupt: ", s.ToString()))
            : absl::UnavailableError(absl::StrCat(
                  "reading data directory ", data_dir_, ": ", s.ToString()));
  }
  it.reset();
  if (status.ok() && quarantined > 0) {
    rocksdb::WriteOptions sync;
    sync.sync = true;
    rocksdb::Status s = db_->Write(sync, &quarantine);
    if (!s.ok()) {
      status = absl::UnavailableError(
          absl::StrCat("data directory ", data_dir_,
                       ": setting aside undecodable records: ", s.ToString()));
    }
  }
  {
    absl::MutexLock lock(&mu_);
    stats_.quarantined = quarantined;
  }
  EndOp();
  return status;
}

absl::Status RocksDbStorage::Compact() {
  absl::Status status = BeginOp();
  if (!status.ok()) return status;
  rocksdb::CompactRangeOptions options;
  // Rewrite the last level too: that is where tombstones are finally dropped.
  options.bottommost_level_compaction =
      rocksdb::BottommostLevelCompaction::kForceOptimized;
  rocksdb::Status s = db_->CompactRange(options, nullptr, nullptr);
  EndOp();
  if (!s.ok()) {
    return absl::UnavailableError(absl::StrCat("compacting data directory ",
                                               data_dir_, ": ", s.ToString()));
  }
  return absl::OkStatus();
}

absl::Status RocksDbStorage::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  mu_.Await(absl::Condition(this, &RocksDbStorage::Idle));
  if (db_ == nullptr) return absl::OkStatus();
  rocksdb::Status s = db_->Close();
  db_.reset();
  if (!s.ok()) {
    return absl::UnavailableError(
        absl::StrCat("closing data directory ", data_dir_, ": ", s.ToString()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Storage>> OpenRocksDbStorage(
    const RocksDbStorageOptions& options) {
  if (options.data_dir.empty()) {
    return absl::InvalidArgumentError(
        "a data directory (--data-dir) is required for durable storage");
  }
  absl::Status prepared = PrepareDataDir(options.data_dir);
  if (!prepared.ok()) return prepared;

  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.write_buffer_size = options.write_buffer_size;
  db_options.keep_log_file_num = 4;
  db_options.max_log_file_size = 16 << 20;
  // Files with many tombstones (retention deleting terminal tasks) are
  // compacted on their own, so deleted records do not hold space for long.
  db_options.table_properties_collector_factories.push_back(
      rocksdb::NewCompactOnDeletionCollectorFactory(
          /*sliding_window_size=*/128, /*deletion_trigger=*/64));
  if (options.env != nullptr) db_options.env = options.env;

  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, options.data_dir, &raw);
  if (!s.ok()) return OpenError(options.data_dir, s);
  return std::unique_ptr<Storage>(
      new RocksDbStorage(options, std::unique_ptr<rocksdb::DB>(raw)));
}

}  // namespace taskd
