# Soak and fault test (tests/soak): taskd, taskd-worker and SDK worker
# processes SIGKILLed and restarted at random under a client workload.
# `make test` runs it for 60 s (//tests/soak:soak_test); `make soak` runs the
# same binary for DURATION (any Go-style duration: 10m, 1h, 90s), outside
# Bazel's test timeout, keeping its data directory under /tmp.
#
#   make soak DURATION=1h [SOAK_SEED=N] [SOAK_MAX_RSS_MB=N]
#
# Prints `acked=N completed=N cancelled=N failed=N retried=N lost=0 changed=0
# max_rss_mb=N` and exits non-zero when anything was lost or changed or the
# server's RSS passed the bound it states at the start.
DURATION ?= 1h

.PHONY: soak

soak: deps
	$(BAZEL) build //tests/soak:soak_test
	@dir=$$(mktemp -d /tmp/taskd-soak-XXXXXX) && \
	  bin=$$($(BAZEL) info bazel-bin 2>/dev/null) && \
	  echo "soak: $(DURATION), data under $$dir" && \
	  cd "$$bin/tests/soak/soak_test.runfiles/taskd" && \
	  TEST_TMPDIR=$$dir SOAK_DURATION=$(DURATION) \
	  $(if $(SOAK_SEED),SOAK_SEED=$(SOAK_SEED)) \
	  $(if $(SOAK_MAX_RSS_MB),SOAK_MAX_RSS_MB=$(SOAK_MAX_RSS_MB)) \
	  ../../soak_test
