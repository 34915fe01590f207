"""Server reflection from Python, as grpcurl would use it.

    py_reflection.py TARGET DESCRIPTOR_SET

Lists the services, asks for the file that defines taskd.v1.TaskService
(with its dependencies), builds a descriptor pool from the answer alone, and
compares the served taskd.v1 file with DESCRIPTOR_SET (protoc's compilation
of api/taskd/v1/taskd.proto). Prints one JSON object; exits 1 on a mismatch.
"""

import json
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool

import reflection_pb2 as rpb

METHOD = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


def ask(channel, requests):
    call = channel.stream_stream(
        METHOD,
        request_serializer=rpb.ServerReflectionRequest.SerializeToString,
        response_deserializer=rpb.ServerReflectionResponse.FromString)
    return list(call(iter(requests), timeout=10))


def comparable(file_proto):
    """The parts of a FileDescriptorProto that define the API."""
    copy = descriptor_pb2.FileDescriptorProto()
    copy.CopyFrom(file_proto)
    copy.ClearField("name")
    copy.ClearField("options")
    copy.ClearField("source_code_info")
    for message in copy.message_type:
        strip_json_names(message)
    return copy


def strip_json_names(message):
    for field in message.field:
        field.ClearField("json_name")
    for nested in message.nested_type:
        strip_json_names(nested)


def add_all(pool, files):
    """Adds files to the pool, each after the files it imports."""
    pending = {f.name: f for f in files}
    added = set()
    while pending:
        ready = [f for f in pending.values()
                 if all(d in added or d not in pending for d in f.dependency)]
        if not ready:
            raise SystemExit(f"unresolvable imports among {sorted(pending)}")
        for f in ready:
            pool.Add(f)
            added.add(f.name)
            del pending[f.name]


def main(target, descriptor_set_path):
    with grpc.insecure_channel(target) as channel:
        listed, described, reflected = ask(channel, [
            rpb.ServerReflectionRequest(list_services=""),
            rpb.ServerReflectionRequest(file_containing_symbol="taskd.v1.TaskService"),
            rpb.ServerReflectionRequest(
                file_containing_symbol="grpc.reflection.v1alpha.ServerReflection"),
        ])
    services = sorted(s.name for s in listed.list_services_response.service)
    files = [descriptor_pb2.FileDescriptorProto.FromString(b)
             for b in described.file_descriptor_response.file_descriptor_proto]
    pool = descriptor_pool.DescriptorPool()
    add_all(pool, files)
    task_service = pool.FindServiceByName("taskd.v1.TaskService")
    methods = {m.name: [m.input_type.full_name, m.output_type.full_name,
                        m.client_streaming, m.server_streaming]
               for m in task_service.methods}

    with open(descriptor_set_path, "rb") as f:
        compiled = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    expected = next(f for f in compiled.file if f.package == "taskd.v1")
    served = next(f for f in files if f.package == "taskd.v1")
    matches = comparable(served) == comparable(expected)

    # The server's own reflection schema agrees with the copy used here.
    # (gRPC 1.51 repeats the files it sent earlier on the stream.)
    served_reflection = next(
        f for f in (descriptor_pb2.FileDescriptorProto.FromString(b)
                    for b in reflected.file_descriptor_response.file_descriptor_proto)
        if f.package == "grpc.reflection.v1alpha")
    local_reflection = descriptor_pb2.FileDescriptorProto()
    rpb.DESCRIPTOR.CopyToProto(local_reflection)
    reflection_schema_matches = comparable(served_reflection) == comparable(local_reflection)

    print(json.dumps({
        "services": services,
        "files": sorted(f.name for f in files),
        "task_service_methods": methods,
        "taskd_services_in_file": sorted(s.name for s in served.service),
        "matches_api_proto": matches,
        "reflection_schema_matches": reflection_schema_matches,
    }))
    return 0 if matches and reflection_schema_matches else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
