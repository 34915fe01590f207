// Fuzzes recovery from a data directory: the input becomes arbitrary keys
// and values in a RocksDB (in memory), as a damaged or foreign data
// directory would hold. Recovery must never crash and never refuse to
// start because of a record: unreadable ones are quarantined, and a second
// recovery finds nothing left to set aside.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "scheduler/clock.h"
#include "scheduler/engine.h"
#include "scheduler/storage/rocksdb_storage.h"

namespace {

// Reads a length-prefixed piece of the input (1 length byte).
std::string Take(const uint8_t*& p, const uint8_t* end) {
  if (p == end) return "";
  size_t n = *p++;
  if (static_cast<size_t>(end - p) < n) n = end - p;
  std::string out(reinterpret_cast<const char*>(p), n);
  p += n;
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<rocksdb::Env> env(rocksdb::NewMemEnv(rocksdb::Env::Default()));
  const std::string dir = "/tmp/taskd-recovery-fuzz";  // files stay in memory
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    options.env = env.get();
    rocksdb::DB* raw = nullptr;
    if (!rocksdb::DB::Open(options, dir, &raw).ok()) std::abort();
    std::unique_ptr<rocksdb::DB> db(raw);
    const uint8_t* p = data;
    const uint8_t* end = data + size;
    while (p != end) {
      // Keys mostly in the store's own namespaces, so values get decoded.
      const uint8_t kind = *p++;
      std::string key = Take(p, end);
      if (kind % 4 == 0) key = "t/" + key;
      if (kind % 4 == 1) key = "m/" + key;
      if (kind % 4 == 2) key = "m/queue/" + key;
      std::string value = Take(p, end);
      db->Put(rocksdb::WriteOptions(), key, value);
    }
  }
  for (int run = 0; run < 2; ++run) {
    taskd::RocksDbStorageOptions options;
    options.data_dir = dir;
    options.env = env.get();
    auto storage = taskd::OpenRocksDbStorage(options);
    if (!storage.ok()) std::abort();
    taskd::FakeClock clock;
    taskd::Engine engine(taskd::EngineOptions{}, &clock);
    auto stats = engine.Recover(**storage);
    if (!stats.ok()) std::abort();  // one bad record never stops a start
    if (run == 1 && stats->quarantined != 0) std::abort();
    // Whatever was recovered can be read back and listed.
    taskd::v1::ListTasksRequest list;
    list.set_page_size(1000);
    if (!engine.List(list).ok()) std::abort();
    engine.Shutdown();
    (*storage)->Close().IgnoreError();
  }
  return 0;
}
