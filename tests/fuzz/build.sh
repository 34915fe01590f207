#!/usr/bin/env bash
# Builds the libFuzzer targets with Debian's clang-14 (AddressSanitizer and
# UBSan on), outside Bazel: Bazel's toolchain here is gcc, and libFuzzer
# needs clang. The engine sources are compiled once into $OUT/obj; each
# fuzzer links them with the Debian libraries.
#
#   tests/fuzz/build.sh [OUT]      (default: tests/fuzz/out)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$root/tests/fuzz/out}"
mkdir -p "$out/obj" "$out/gen/api/taskd/v1"
cd "$root"

CXX=${CXX:-clang++-14}
FLAGS=(-std=c++20 -O1 -g -fno-omit-frame-pointer
       -fsanitize=fuzzer-no-link,address,undefined
       -fno-sanitize-recover=undefined -I"$root" -I"$out/gen" -DTASKD_FUZZING)

protoc --cpp_out="$out/gen" -I. api/taskd/v1/taskd.proto

sources=(
  "$out/gen/api/taskd/v1/taskd.pb.cc"
  api/strings/utf8.cc
  scheduler/await_table.cc
  scheduler/cronlib/cron.cc
  scheduler/dispatcher.cc
  scheduler/engine.cc
  scheduler/engine_queues.cc
  scheduler/engine_recovery.cc
  scheduler/engine_worker.cc
  scheduler/event_log.cc
  scheduler/journal.cc
  scheduler/task_id.cc
  scheduler/task_record.cc
  scheduler/task_state.cc
  scheduler/task_store.cc
  scheduler/timer_queue.cc
  scheduler/validation.cc
  scheduler/storage/memory_storage.cc
  scheduler/storage/rocksdb_storage.cc
  scheduler/storage/storage.cc
)
objects=()
for src in "${sources[@]}"; do
  obj="$out/obj/$(echo "${src#"$out/"}" | tr '/' '_').o"
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || \
     [ -n "$(find scheduler api -name '*.h' -newer "$obj" -print -quit)" ]; then
    "$CXX" "${FLAGS[@]}" -c "$src" -o "$obj" &
    # Two compilers at once: the machines here have two cores.
    if [ "$(jobs -r | wc -l)" -ge 2 ]; then wait -n; fi
  fi
  objects+=("$obj")
done
wait

# The Debian libraries, as bazel/system.BUILD links them.
absl=$(grep -o '"-labsl_[a-z_0-9]*"' bazel/system.BUILD | tr -d '"' | sort -u)
LIBS=(-lrocksdb -lprotobuf $absl -lpthread)

for fuzzer in validation cron recovery engine; do
  "$CXX" "${FLAGS[@]}" -fsanitize=fuzzer "tests/fuzz/${fuzzer}_fuzzer.cc" \
    "${objects[@]}" "${LIBS[@]}" -o "$out/${fuzzer}_fuzzer"
done
echo "fuzzers built in $out"
