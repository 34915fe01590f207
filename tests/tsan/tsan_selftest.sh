#!/usr/bin/env bash
# Proves that the tsan build can fail and that its interposer gives TSan the
# happens-before of abseil's and gRPC's synchronisation:
#   - racy_counter (a plain data race) must be reported, and so must
#     lock_inversion (absl::Mutex taken in both orders: TSan's lock-order
#     check works on abseil's mutexes);
#   - every guarded_handoffs and grpc_handoffs scenario must run clean, and
#     must be reported once the annotations are off (TASKD_TSAN_ANNOTATE,
#     TASKD_TSAN_GRPC_LOCKS: tests/tsan/interposer.h), so that a clean run
#     means "ordered", not "not looked at".
# Usage: tsan_selftest.sh tsan|plain <racy_counter> <lock_inversion>
#        <guarded_handoffs> <grpc_handoffs>. In a build without TSan (`plain`) it only checks
# that every scenario runs and exits 0.
set -uo pipefail

mode=$1
racy=$2
inversion=$3
guarded=$4
grpc=$5

failures=0
checks=0

# The children report on their stderr, whatever the caller's TSAN_OPTIONS
# (the tsan test wrapper sends reports to files and fails on any).
child_options="halt_on_error=1:exitcode=66"

# check <clean|race|deadlock> <label> <where> <command...>: `where` is what
# the SUMMARY line of the expected report says after its kind (a regex: the
# program's own file, say, so that a race inside a library does not count).
check() {
  local expect=$1 label=$2 where=$3
  shift 3
  local out rc
  out=$(TSAN_OPTIONS="$child_options" "$@" 2>&1)
  rc=$?
  checks=$((checks + 1))
  case "$expect" in
    clean)
      if [ "$rc" -eq 0 ] && ! grep -q 'ThreadSanitizer' <<<"$out"; then
        echo "ok    $label: clean"
        return
      fi
      echo "FAIL  $label: expected a clean run, got exit $rc:"
      ;;
    race)
      if [ "$rc" -eq 66 ] &&
         grep -q "^SUMMARY: ThreadSanitizer: data race .*${where}" <<<"$out"; then
        echo "ok    $label: race reported"
        return
      fi
      echo "FAIL  $label: expected TSan to report a data race, got exit $rc:"
      ;;
    deadlock)
      if [ "$rc" -eq 66 ] && grep -q \
         "^SUMMARY: ThreadSanitizer: lock-order-inversion .*${where}" <<<"$out"; then
        echo "ok    $label: potential deadlock reported"
        return
      fi
      echo "FAIL  $label: expected TSan to report a lock-order inversion, got exit $rc:"
      ;;
  esac
  sed 's/^/      /' <<<"$out" | head -60
  failures=$((failures + 1))
}

case "$mode" in
  tsan)
    check race racy_counter /racy_counter.cc: "$racy"
    check deadlock lock_inversion "(potential deadlock)" "$inversion"
    for scenario in $("$guarded" --list); do
      check clean "abseil $scenario" - "$guarded" "$scenario"
      where=/guarded_handoffs.cc:
      # A Status's last owner deletes it: the free is what races.
      [ "$scenario" = status ] && where="in operator delete"
      check race "abseil $scenario unannotated" "$where" \
        env TASKD_TSAN_ANNOTATE=0 "$guarded" "$scenario"
    done
    # gRPC hand-offs are ordered twice by default: by the completion-queue
    # tags and by gRPC's own locks. The tags alone must suffice. With gRPC's
    # locks hidden, TSan also sees libgrpc's own libc calls (fd, memcpy)
    # unordered: ignore_noninstrumented_modules keeps those out of these
    # runs.
    hidden="TSAN_OPTIONS=${child_options}:ignore_noninstrumented_modules=1"
    for scenario in $("$grpc" --list); do
      check clean "grpc $scenario" - "$grpc" "$scenario"
      check clean "grpc $scenario by tags only" - \
        env "$hidden" TASKD_TSAN_GRPC_LOCKS=0 "$grpc" "$scenario"
    done
    # Without tags and gRPC's locks the alarm's and the in-process message's
    # hand-offs are races. (The call's is not: gRPC wakes the polling thread
    # through an eventfd, and TSan orders a write to a descriptor before the
    # read that sees it.)
    for scenario in alarm inprocess; do
      check race "grpc $scenario by neither" /grpc_handoffs.cc: \
        env "$hidden" TASKD_TSAN_ANNOTATE=absl TASKD_TSAN_GRPC_LOCKS=0 \
        "$grpc" "$scenario"
      check race "grpc $scenario unannotated" /grpc_handoffs.cc: \
        env "$hidden" TASKD_TSAN_ANNOTATE=0 "$grpc" "$scenario"
    done
    ;;
  plain)
    echo "not a TSan build (use --config=tsan): only running the scenarios"
    for scenario in $("$guarded" --list); do
      check clean "abseil $scenario" - "$guarded" "$scenario"
    done
    for scenario in $("$grpc" --list); do
      check clean "grpc $scenario" - "$grpc" "$scenario"
    done
    ;;
  *)
    echo "usage: $0 tsan|plain <racy_counter> <lock_inversion>" \
      "<guarded_handoffs> <grpc_handoffs>"
    exit 2
    ;;
esac

echo "${checks} checks, ${failures} failed"
[ "$failures" -eq 0 ]
