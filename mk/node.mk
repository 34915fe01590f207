# Node.js client and worker SDK (clients/node), its examples, and the
# Node-vs-BullMQ benchmark.
#
#   make node-deps    npm ci in clients/node (make test runs it first)
#   make node-proto   copy api/taskd/v1/taskd.proto into the package
#   make bench-node   taskd vs BullMQ (Redis) on the same workload; a table

NODE_DIR := clients/node
NODE_EXAMPLES_DIR := examples/node

# tests/cross_language runs Python (Debian's /usr/bin/python3) beside Node and C++.
PACKAGES += python3-grpcio python3-protobuf
TEST_PREP += node-deps

.PHONY: node-deps node-proto bench-node

node-deps:
	@command -v node >/dev/null || { echo "node-deps: Node.js 18+ (node, npm) is required" >&2; exit 1; }
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	cd $(NODE_EXAMPLES_DIR) && npm ci --no-audit --no-fund --loglevel=error

node-proto:
	cp api/taskd/v1/taskd.proto $(NODE_DIR)/proto/taskd/v1/taskd.proto

# taskd's Node client and worker next to BullMQ on Debian's redis-server,
# same workload, same run (a table; not part of `make test`).
bench-node: build node-deps
	@command -v redis-server >/dev/null || { \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q redis-server; }
	node $(NODE_DIR)/bench/bench_vs_bullmq.js --taskd-bin ./bazel-bin/services/taskd
