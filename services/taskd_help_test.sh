#!/bin/sh
# `taskd --help` lists every flag of services/main.cc on one line with its
# default; `taskd --version` names taskd, gRPC, protobuf and RocksDB.
set -eu
taskd="$TEST_SRCDIR/taskd/services/taskd"
main="$TEST_SRCDIR/taskd/services/main.cc"
help=$("$taskd" --help)
status=0
for flag in $(sed -n 's/^ABSL_FLAG([^,]*, *\([a-z_]*\),.*/\1/p' "$main"); do
  dashed=$(echo "$flag" | tr _ -)
  if ! echo "$help" | grep -q -- "^  --$dashed .*(default .*)\$"; then
    echo "FAIL: --$dashed missing or without a default in --help" >&2
    status=1
  fi
done
[ "$(echo "$help" | grep -c -- '^  --')" -ge 15 ] || { echo "FAIL: too few flags" >&2; status=1; }
version=$("$taskd" --version)
echo "$version" | grep -Eq '^taskd [0-9]+\.[0-9]+\.[0-9]+ \(gRPC [0-9.]+, protobuf [0-9.]+, RocksDB [0-9.]+\)$' \
  || { echo "FAIL: --version printed: $version" >&2; status=1; }
[ $status -eq 0 ] && echo "ok: $(echo "$help" | grep -c -- '^  --') flags listed; $version"
exit $status
