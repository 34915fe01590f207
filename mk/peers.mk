# `make bench-peers`: taskd's bench workload (tests/bench) on Celery, RQ and
# BullMQ, each on a fresh Debian redis-server, so anyone can rerun the
# comparison. Prints a table and writes JSON lines (not part of `make test`).
#
#   make bench-peers                                   N = 20,000, all peers
#   make bench-peers BENCH_PEERS_ARGS='--tasks 2000 --peers rq,bullmq'
#   make peers-node-deps                               npm ci in tests/bench/peers
#
# `make test` runs its smoke test (//tests/bench/peers:smoke_test, every peer
# on 200 tasks), so the packages are everyone's and peers-node-deps is test
# set-up. BullMQ comes from npm, pinned by tests/bench/peers/package-lock.json.

PEERS_DIR := tests/bench/peers
BENCH_PEERS_ARGS ?=

PACKAGES += python3-celery python3-rq python3-redis redis-server nodejs
TEST_PREP += peers-node-deps

.PHONY: bench-peers peers-node-deps

bench-peers: deps peers-node-deps
	/usr/bin/python3 $(PEERS_DIR)/bench_peers.py $(BENCH_PEERS_ARGS)

# npm ci when node_modules is missing or older than the lock file. npm is
# apt-installed only when absent: a Node.js build that bundles npm conflicts
# with Debian's npm package.
peers-node-deps: deps
	@command -v npm >/dev/null || { $(SUDO) apt-get install -y -q npm; }
	@if [ ! -f $(PEERS_DIR)/node_modules/.package-lock.json ] || \
	    [ $(PEERS_DIR)/package-lock.json -nt $(PEERS_DIR)/node_modules/.package-lock.json ]; then \
	  cd $(PEERS_DIR) && npm ci --no-audit --no-fund --loglevel=error; \
	fi
