"""grpc.health.v1.Health/Check as kubelet's gRPC probe sends it, with Debian's
python3-grpcio and no generated code (the two messages are hand-encoded).

    from grpc_health import health_check, SERVING
    assert health_check(50051, service="", timeout_s=1) == SERVING

Used by statefulset_args_test.py and image/check.sh.
"""

import grpc

SERVING = 1


def _varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def health_check(port, service="", timeout_s=1.0, host="127.0.0.1"):
    """Returns the ServingStatus number (1 = SERVING) or raises grpc.RpcError."""
    request = b"" if not service else b"\x0a" + _varint(len(service)) + service.encode()
    options = [("grpc.enable_http_proxy", 0)]
    with grpc.insecure_channel(f"{host}:{port}", options=options) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                    request_serializer=lambda b: b,
                                    response_deserializer=lambda b: b)
        response = check(request, timeout=timeout_s)
    # HealthCheckResponse{status = 1: enum (varint)}; an absent field is 0.
    if len(response) >= 2 and response[0] == 0x08:
        return response[1]
    return 0


if __name__ == "__main__":
    # usage: grpc_health.py PORT [DEADLINE_S]: polls until SERVING or exits 1.
    import sys
    import time
    port = int(sys.argv[1])
    deadline = time.monotonic() + (float(sys.argv[2]) if len(sys.argv) > 2 else 20)
    last = None
    while time.monotonic() < deadline:
        try:
            if health_check(port) == SERVING:
                print(f"127.0.0.1:{port}: SERVING")
                sys.exit(0)
        except grpc.RpcError as e:
            last = e.code()
        time.sleep(0.1)  # pacing between probes
    print(f"127.0.0.1:{port}: not SERVING before the deadline (last: {last})", file=sys.stderr)
    sys.exit(1)
