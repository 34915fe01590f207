#!/bin/bash
# The clients' security flags end to end, as the README's "Secure it" does:
# openssl-made CA and certificates, taskd with mTLS and a token file, tokens
# from `taskctl token new`, taskctl with --tls-ca/--tls-cert/--tls-key/
# --token, taskd-worker with TASKD_TOKEN; a missing token is refused, and a
# token added to the file works after SIGHUP.
set -euo pipefail
root="$TEST_SRCDIR/taskd"
taskd="$root/services/taskd"
taskctl="$root/clients/cpp/taskctl"
worker="$root/clients/cpp/taskd-worker"
work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/e2e.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; echo "--- taskd log:" >&2; cat "$work/taskd.log" >&2; exit 1; }

"$root/tests/security/make_certs.sh" "$work/certs"
certs="$work/certs"

# Tokens: line 1 the token, line 2 the file line.
"$taskctl" token new ci-bot --roles submit,read --queues 'images*' > "$work/ci" 2>/dev/null
"$taskctl" token new images-worker --roles work --queues images > "$work/wk" 2>/dev/null
ci=$(head -1 "$work/ci"); wk=$(head -1 "$work/wk")
[[ "$ci" == tdk_* ]] || fail "taskctl token new printed: $(cat "$work/ci")"
tail -1 "$work/ci" > "$work/tokens.txt"
tail -1 "$work/wk" >> "$work/tokens.txt"
grep -q "$ci" "$work/tokens.txt" && fail "the token itself went into the token file"

"$taskd" --listen=127.0.0.1:0 --durability=memory --metrics-listen= \
  --tls-cert="$certs/server.pem" --tls-key="$certs/server.key" \
  --tls-client-ca="$certs/ca.pem" --auth-tokens="$work/tokens.txt" \
  --auth-tokens-check=0 2> "$work/taskd.log" &
pids+=($!)
port=
for _ in $(seq 1 200); do
  port=$(sed -n 's/.*serving on .* (port \([0-9]*\)).*/\1/p' "$work/taskd.log")
  [ -n "$port" ] && break
  kill -0 "${pids[0]}" 2>/dev/null || fail "taskd exited"
  sleep 0.05
done
[ -n "$port" ] || fail "taskd did not report its port"
grep -q "mTLS (client certificates required), tokens from" "$work/taskd.log" \
  || fail "start-up line does not say how the port is protected"
server="localhost:$port"
tls=(--tls-ca "$certs/ca.pem" --tls-cert "$certs/client.pem" --tls-key "$certs/client.key")

# The worker takes its token from the environment.
TASKD_TOKEN="$wk" "$worker" --server "$server" "${tls[@]}" --queue images \
  --handler echo=cat 2> "$work/worker.log" &
pids+=($!)

out=$("$taskctl" --server "$server" "${tls[@]}" --token "$ci" \
  submit echo --queue images --payload hello --wait --wait-timeout 30s) \
  || fail "submit --wait failed: $out"
grep -q 'SUCCEEDED.*result="hello"' <<<"$out" || fail "unexpected: $out"

# No token: refused, exit 1, the code named.
if err=$("$taskctl" --server "$server" "${tls[@]}" list --queue images 2>&1); then
  fail "a call without a token succeeded"
fi
grep -q UNAUTHENTICATED <<<"$err" || fail "no UNAUTHENTICATED in: $err"
# Out of scope: the ci token may not submit to billing.
if err=$("$taskctl" --server "$server" "${tls[@]}" --token "$ci" submit echo --queue billing 2>&1); then
  fail "an out-of-scope submit succeeded"
fi
grep -q PERMISSION_DENIED <<<"$err" || fail "no PERMISSION_DENIED in: $err"
# No client certificate under mTLS: no connection at all.
if "$taskctl" --server "$server" --tls-ca "$certs/ca.pem" --token "$ci" list --queue images >/dev/null 2>&1; then
  fail "a client without a certificate was served"
fi

# A token added to the file works after SIGHUP (the file is not watched here).
"$taskctl" token new ops --roles admin > "$work/ops" 2>/dev/null
ops=$(head -1 "$work/ops")
tail -1 "$work/ops" >> "$work/tokens.txt"
if TASKD_TOKEN="$ops" "$taskctl" --server "$server" "${tls[@]}" queues >/dev/null 2>&1; then
  fail "a new token worked before SIGHUP"
fi
kill -HUP "${pids[0]}"
ok=
for _ in $(seq 1 100); do
  if TASKD_TOKEN="$ops" "$taskctl" --server "$server" "${tls[@]}" queues > "$work/queues" 2>&1; then
    ok=1; break
  fi
  sleep 0.1
done
[ -n "$ok" ] || fail "the new token did not work after SIGHUP: $(cat "$work/queues")"
grep -q images "$work/queues" || fail "queues output: $(cat "$work/queues")"
grep -q "load 2" "$work/taskd.log" || fail "no reload in the log"
grep -q "$ci\|$wk\|$ops" "$work/taskd.log" && fail "a token was logged"
echo "ok: TLS+mTLS+tokens end to end with taskctl and taskd-worker on port $port"
