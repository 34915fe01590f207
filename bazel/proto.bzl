"""One-line C++ libraries from .proto files with Debian's protoc and gRPC plugin.

    taskd_proto(name = "taskd_proto", src = "taskd.proto")

defines `:taskd_proto` (messages only; no gRPC) and `:taskd_proto_grpc`
(service stubs). Well-known types come from /usr/include and libprotobuf.
"""

load("@rules_cc//cc:defs.bzl", "cc_library")

def taskd_proto(name, src, deps = [], visibility = None):
    base = src[:-len(".proto")]
    pb = [base + ".pb.h", base + ".pb.cc"]
    grpc = [base + ".grpc.pb.h", base + ".grpc.pb.cc"]
    native.genrule(
        name = name + "_gen",
        srcs = [src] + [d + "_srcs" for d in deps],
        outs = pb + grpc,
        cmd = " ".join([
            "protoc",
            "--proto_path=.",
            "--proto_path=/usr/include",
            "--cpp_out=$(GENDIR)",
            "--grpc_out=$(GENDIR)",
            "--plugin=protoc-gen-grpc=$$(command -v grpc_cpp_plugin)",
            "$(location " + src + ")",
        ]),
    )
    native.filegroup(name = name + "_srcs", srcs = [src], visibility = visibility)
    cc_library(
        name = name,
        srcs = [pb[1]],
        hdrs = [pb[0]],
        deps = deps + ["@system//:protobuf"],
        visibility = visibility,
    )
    cc_library(
        name = name + "_grpc",
        srcs = [grpc[1]],
        hdrs = [grpc[0]],
        deps = [":" + name, "@system//:grpc"] + [d + "_grpc" for d in deps],
        visibility = visibility,
    )
