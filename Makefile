# taskd: `make run` serves on 127.0.0.1:50051, `make test` runs every test.
# Both install whatever Debian packages are missing first (idempotent).

PACKAGES := bazel-bootstrap bazel-rules-java default-jdk-headless \
	libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
	libabsl-dev librocksdb-dev prometheus-cpp-dev libgtest-dev libgmock-dev \
	libbenchmark-dev libjemalloc-dev
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BAZEL := bazel
LISTEN ?= 127.0.0.1:50051
DATA_DIR ?= ./taskd-data

.PHONY: deps build run test bench clean sanitize sanitize-cc sanitize-tsan fuzz

# Each part of the project that needs more than the C++ build (a client in
# another language, the monitoring and Kubernetes checks) keeps its packages
# and targets in its own mk/<part>.mk: `PACKAGES += ...` for Debian packages,
# `TEST_PREP += <target>` for set-up `make test` needs before Bazel runs
# (e.g. npm ci). Included here so the two commands stay the only entry points.
TEST_PREP :=
-include mk/*.mk

deps:
	@missing=$$(for p in $(PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	fi

build: deps
	$(BAZEL) build //...

run: build
	./bazel-bin/services/taskd --listen=$(LISTEN) --data-dir=$(DATA_DIR)

test: build $(TEST_PREP)
	$(BAZEL) test //... --test_output=errors

# taskd next to a null-RPC baseline in one run: submits, end to end with the
# C++ worker, round trips, server CPU, memory per held call, a 1M-task
# backlog (a table, and JSON lines in ./bench-results.jsonl; a few minutes,
# not part of `make test`). BENCH_FLAGS adds flags, e.g. --quick or
# --taskd_bin=/path/to/older/taskd; see tests/bench/taskd_bench.cc.
BENCH_FLAGS ?=
bench: deps
	$(BAZEL) build //tests/bench:taskd_bench
	./bazel-bin/tests/bench/taskd_bench $(BENCH_FLAGS)

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer
# (.bazelrc config asan; outputs beside the normal ones), then under
# ThreadSanitizer (config tsan, see tests/tsan/; tests tagged no_tsan say why
# they cannot run there). Tests tagged no_sanitize (the soak: its RSS bound
# is for a normal build) are left out of both, as in CI. `sanitize-cc` and
# `sanitize-tsan` run only the C++ tests, which is what CI adds after
# `make test`.
sanitize: build $(TEST_PREP)
	$(BAZEL) test --config=asan //... --test_output=errors \
	  --test_tag_filters=-no_sanitize
	$(BAZEL) test --config=tsan //... --test_output=errors \
	  --test_tag_filters=-no_sanitize,-no_tsan

SANITIZED_TESTS := 'kind(cc_test, //...) except attr(tags, no_sanitize, //...)'
sanitize-cc: build
	$(BAZEL) test --config=asan --test_output=errors \
	  $$($(BAZEL) query $(SANITIZED_TESTS) 2>/dev/null)

TSAN_TESTS := '(kind(cc_test, //...) + tests(//tests/tsan/...)) \
  except attr(tags, "no_sanitize|no_tsan", //...)'
sanitize-tsan: build
	$(BAZEL) test --config=tsan --test_output=errors \
	  $$($(BAZEL) query $(TSAN_TESTS) 2>/dev/null)

# libFuzzer targets (tests/fuzz, clang-14): each runs FUZZ_SECONDS from its
# seed corpus; prints executions per second and fails on a crash.
FUZZ_SECONDS ?= 30
fuzz: PACKAGES += clang-14 libfuzzer-14-dev libclang-rt-14-dev
fuzz: deps
	tests/fuzz/run.sh $(FUZZ_SECONDS)

clean:
	$(BAZEL) clean
