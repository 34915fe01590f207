"""Generated gRPC stubs of taskd.v1 (protoc + grpc_python_plugin; see tests/stubs_test.py)."""
