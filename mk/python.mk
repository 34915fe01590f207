# Python client, asyncio client, worker SDK and Celery-style layer
# (clients/python, package `taskd`). Everything comes from Debian: there is
# no PyPI here. Celery, Redis and redis-server are for `make bench-python`.
PACKAGES += python3-grpcio python3-protobuf python3-setuptools python3-pip \
	python3-venv python3-celery python3-redis redis-server
PYTHON3 := /usr/bin/python3

.PHONY: python-stubs bench-python

# Regenerates the checked-in gRPC stubs from api/ (a test fails when stale).
python-stubs:
	protoc --proto_path=api --proto_path=/usr/include \
	  --python_out=clients/python --pyi_out=clients/python \
	  --grpc_python_out=clients/python \
	  --plugin=protoc-gen-grpc_python=$$(command -v grpc_python_plugin) \
	  api/taskd/v1/taskd.proto

# Python submit and end-to-end rates next to Celery 5 + Redis, same run
# (a table; not part of `make test`).
bench-python: deps
	$(BAZEL) build //services:taskd
	$(PYTHON3) clients/python/bench/bench_vs_celery.py \
	  --taskd-bin ./bazel-bin/services/taskd
