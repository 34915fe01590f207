#!/bin/bash
# Checks an OCI archive written by build.sh by running it, not by reading it:
#
#   image/check.sh OUT.tar      (root; `make image` runs it after build.sh)
#
# - imports the archive with buildah (private vfs store) and reads its config:
#   the user must be a non-root uid, the entrypoint taskd;
# - runs the entrypoint with --version inside the image's own file tree
#   (chroot, as that user): proves the copied libraries are all it needs;
# - starts the entrypoint with its default args (ports moved to free
#   loopback ports, memory durability), probes grpc.health.v1 until SERVING
#   and /metrics, then stops it with SIGTERM and expects exit 0;
# - prints the image's sizes (archive, compressed layer, unpacked tree).
set -euo pipefail

archive=${1:?usage: check.sh OUT.tar}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "$repo/image/out/check.XXXXXX")
bh() { buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs "$@"; }
ctr= pid=
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
  [ -n "$ctr" ] && { bh umount "$ctr" >/dev/null 2>&1; bh rm "$ctr" >/dev/null 2>&1; } || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "check.sh: FAIL: $*" >&2; exit 1; }

ctr=$(bh from --quiet "oci-archive:$archive")
config=$(bh inspect --type container "$ctr" | /usr/bin/python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["OCIv1"]["config"]))')
user=$(/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin).get("User",""))' <<<"$config")
entrypoint=$(/usr/bin/python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin).get("Entrypoint") or []))' <<<"$config")
cmd=$(/usr/bin/python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin).get("Cmd") or []))' <<<"$config")
uid=${user%%:*}
[[ "$uid" =~ ^[0-9]+$ && "$uid" != 0 ]] || fail "image user '$user' is not a numeric non-root uid"
[ "$entrypoint" = /usr/local/bin/taskd ] || fail "entrypoint is '$entrypoint'"
mnt=$(bh mount "$ctr")
echo "check.sh: user $user, entrypoint $entrypoint, cmd $cmd"

# 1. --version from the image's own tree.
version=$(chroot --userspec="$user" "$mnt" $entrypoint --version 2>&1) || fail "taskd --version: $version"
grep -q taskd <<<"$version" || fail "taskd --version printed: $version"
echo "check.sh: taskd --version: $(tr '\n' ' ' <<<"$version")"
for tool in taskctl taskd-worker; do
  chroot --userspec="$user" "$mnt" /usr/local/bin/$tool --help >/dev/null 2>&1 \
    || fail "$tool --help does not run in the image"
done

# 2. Serve with the image's default args, gRPC on a free loopback port; probe.
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port) mport=
args=()
for a in $cmd; do
  case "$a" in
    --listen=*) args+=("--listen=127.0.0.1:$port") ;;
    --metrics-listen=*) mport=$(free_port); args+=("--metrics-listen=127.0.0.1:$mport") ;;
    *) args+=("$a") ;;
  esac
done
chroot --userspec="$user" "$mnt" /bin/true 2>/dev/null && fail "the image has a /bin/true: not minimal"
chroot --userspec="$user" "$mnt" $entrypoint "${args[@]}" --durability=memory \
  >"$work/taskd.log" 2>&1 &
pid=$!
/usr/bin/python3 "$repo/tests/k8s/grpc_health.py" "$port" 20 || { cat "$work/taskd.log" >&2; fail "no SERVING health from the image's taskd"; }
if [ -n "$mport" ]; then
  /usr/bin/python3 - "$mport" <<'PY' || fail "no taskd_build_info on the image's /metrics"
import sys, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/metrics"
body = urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=5).read().decode()
sys.exit(0 if "\ntaskd_build_info{" in "\n" + body else 1)
PY
  echo "check.sh: /metrics from the image's taskd has taskd_build_info"
fi
kill -TERM "$pid"
code=0; wait "$pid" || code=$?
pid=
[ "$code" = 0 ] || { cat "$work/taskd.log" >&2; fail "taskd exited $code after SIGTERM"; }
echo "check.sh: taskd from the image served gRPC health and stopped cleanly on SIGTERM"

layer=$(tar -tvf "$archive" | sort -k3 -n | tail -1 | awk '{print $3}')
echo "check.sh: OK: archive $(du -b "$archive" | cut -f1) bytes," \
  "largest (compressed) layer $layer bytes, unpacked $(du -sb "$mnt" | cut -f1) bytes"
