#!/bin/bash
# Builds the taskd OCI image with buildah, without a Docker daemon, and
# writes it as an OCI archive.
#
#   image/build.sh OUT.tar [NAME:TAG]     (root; `make image` runs it)
#
# The image holds the three binaries (taskd, taskctl, taskd-worker, from
# bazel-bin, debug info stripped) and exactly the shared libraries they load,
# as `ldd` resolves them on this machine (the dynamic loader included), and
# nothing else: no shell, no package manager. It runs as uid/gid 65532 with
# /var/lib/taskd (owned by that uid) as working directory, so taskd's default
# --data-dir lands on a writable path when no volume is mounted.
# buildah keeps its layers in a private vfs store under image/out/, removed
# afterwards. Needs root (it mounts the container's file tree).
set -euo pipefail

out=${1:?usage: build.sh OUT.tar [NAME:TAG]}
name=${2:-localhost/taskd:latest}
repo=$(cd "$(dirname "$0")/.." && pwd)
bins=(services/taskd clients/cpp/taskctl clients/cpp/taskd-worker)

for b in "${bins[@]}"; do
  [ -x "$repo/bazel-bin/$b" ] || { echo "build.sh: $b is not built (bazel build //services:taskd //clients/cpp:all)" >&2; exit 1; }
done
command -v buildah >/dev/null || { echo "build.sh: buildah not found (apt-get install buildah)" >&2; exit 1; }

work=$(mktemp -d "$repo/image/out/build.XXXXXX" 2>/dev/null || { mkdir -p "$repo/image/out"; mktemp -d "$repo/image/out/build.XXXXXX"; })
bh() { buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs "$@"; }
ctr=
cleanup() {
  [ -n "$ctr" ] && bh rm "$ctr" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# The file tree of the image.
root="$work/rootfs"
mkdir -p "$root/usr/local/bin" "$root/var/lib/taskd"
chown 65532:65532 "$root/var/lib/taskd"
for b in "${bins[@]}"; do
  strip --strip-debug -o "$root/usr/local/bin/$(basename "$b")" "$repo/bazel-bin/$b"
done
# Every library the binaries load, resolved by the dynamic linker itself.
libs=$(for b in "${bins[@]}"; do ldd "$repo/bazel-bin/$b"; done | awk '
  /not found/ { print "MISSING " $1; next }
  $2 == "=>" && $3 ~ /^\// { print $3; next }
  $1 ~ /^\// { print $1 }' | sort -u)
if grep -q '^MISSING' <<<"$libs"; then
  echo "build.sh: unresolved libraries:" >&2
  grep '^MISSING' <<<"$libs" >&2
  exit 1
fi
for lib in $libs; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
echo "build.sh: $(wc -w <<<"$libs") shared libraries from ldd"

version=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)
args='"--listen=0.0.0.0:50051"'
if grep -q metrics_listen <<<"$("$repo/bazel-bin/services/taskd" --helpfull 2>&1)"; then
  args="$args, \"--metrics-listen=0.0.0.0:9464\""
fi

ctr=$(bh from --quiet scratch)
# Through the mount (a plain directory with vfs), so ownership is kept.
cp -a "$root/." "$(bh mount "$ctr")/"
bh umount "$ctr" >/dev/null
bh config \
  --entrypoint '["/usr/local/bin/taskd"]' \
  --cmd "[$args]" \
  --user 65532:65532 \
  --workingdir /var/lib/taskd \
  --port 50051/tcp --port 9464/tcp \
  --label org.opencontainers.image.title=taskd \
  --label org.opencontainers.image.description="taskd task scheduler (gRPC), with taskctl and taskd-worker" \
  --label org.opencontainers.image.version="$version" \
  --label org.opencontainers.image.revision="$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)" \
  "$ctr"
rm -f "$out"
bh commit --quiet --format oci --disable-compression=false --rm "$ctr" "oci-archive:$out:$name" >/dev/null
ctr=
echo "build.sh: wrote $out ($name, $(du -h "$out" | cut -f1))"
