# Security: TLS/mTLS and bearer tokens (services/auth, tests/security).
# libssl-dev: libcrypto (SHA-256, random tokens, certificate checks) for the
# build; openssl: the CLI the security tests and the README use to make a CA
# and certificates.
PACKAGES += libssl-dev openssl

.PHONY: bench-auth
# Submit throughput plain / tokens / TLS / TLS + tokens / mTLS + tokens, in
# interleaved slices of one run (BENCH_SECONDS per slice, BENCH_CALLS in flight).
bench-auth: build
	$(BAZEL) run //tests/security:auth_bench -- $(or $(BENCH_SECONDS),3) $(or $(BENCH_CALLS),16)
