"""How a client or worker connects: TLS, mTLS and a bearer token.

Every :class:`taskd.Client`, :class:`taskd.aio.Client`, :class:`taskd.App`
and :class:`taskd.Worker` takes the same keyword arguments as the C++
tools' flags::

    client = taskd.Client("taskd.example.com:50051", tls_ca="ca.pem",
                          token=os.environ["TASKD_TOKEN"])

- ``tls_ca``: PEM file of the CA that signed the server's certificate
  (turns TLS on); ``tls=True`` alone uses the system's trusted roots.
- ``tls_cert`` / ``tls_key``: PEM client certificate and key (mTLS).
- ``token``: bearer token, sent as ``authorization: Bearer <token>``;
  default ``$TASKD_TOKEN``; ``""`` sends none.

The token travels only over a channel that protects it: TLS, or gRPC's
local credentials to a loopback address (a development server without TLS).
A token for any other address without TLS raises ValueError. Files are read
when the channel is made, $TASKD_TOKEN when the object is created.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional

import grpc

TOKEN_ENV = "TASKD_TOKEN"


@dataclass(frozen=True)
class Security:
    """The security options of one connection (see the module docstring)."""

    tls: bool = False
    tls_ca: Optional[str] = None
    tls_cert: Optional[str] = None
    tls_key: Optional[str] = None
    token: str = field(default="", repr=False)  # '' for none; never in a repr

    @property
    def uses_tls(self) -> bool:
        return bool(self.tls or self.tls_ca or self.tls_cert or self.tls_key)



def make_security(tls: bool = False, tls_ca: Optional[str] = None,
                  tls_cert: Optional[str] = None, tls_key: Optional[str] = None,
                  token: Optional[str] = None) -> Security:
    """A checked :class:`Security` from the keyword arguments; a ``token`` of
    None is read from $TASKD_TOKEN now."""
    for name, value in (("tls_ca", tls_ca), ("tls_cert", tls_cert), ("tls_key", tls_key)):
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise TypeError(f"{name}: expected a file path, got {type(value).__name__}")
    if token is not None and not isinstance(token, str):
        raise TypeError(f"token: expected a string, got {type(token).__name__}")
    if bool(tls_cert) != bool(tls_key):
        raise ValueError("tls_cert and tls_key go together (a client certificate and its key)")
    if token is None:
        token = os.environ.get(TOKEN_ENV, "")
    return Security(bool(tls), tls_ca and os.fspath(tls_ca), tls_cert and os.fspath(tls_cert),
                    tls_key and os.fspath(tls_key), token.strip())


def is_loopback_target(target: str) -> bool:
    """Whether ``target`` names a loopback address ("127.0.0.1:50051",
    "localhost:50051", "[::1]:50051", with an optional "dns:///", "ipv4:"
    or "ipv6:")."""
    for prefix in ("dns:///", "ipv4:", "ipv6:"):
        if target.startswith(prefix):
            target = target[len(prefix):]
            break
    if target.startswith("["):
        host = target[1:target.find("]")] if "]" in target else ""
    else:
        host = target.rpartition(":")[0] if ":" in target else target
    if host in ("localhost", "::1"):
        return True
    return host.startswith("127.") and all(ch.isdigit() or ch == "." for ch in host)


def _read(path: Optional[str], name: str) -> Optional[bytes]:
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ValueError(f"{name}: cannot read {path}: {exc.strerror}") from None


def channel_credentials(target: str, security: Security) -> Optional[grpc.ChannelCredentials]:
    """Credentials for a channel to ``target``; None means a plain channel."""
    token = security.token
    if security.uses_tls:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_read(security.tls_ca, "tls_ca"),
            private_key=_read(security.tls_key, "tls_key"),
            certificate_chain=_read(security.tls_cert, "tls_cert"))
    elif token:
        if not is_loopback_target(target):
            raise ValueError(
                f"token: refusing to send a token to {target} without TLS; give tls_ca "
                "(a token in clear text is readable by anyone on the path)")
        # Plain TCP that gRPC deems safe for call credentials: the peer is local.
        credentials = grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
    else:
        return None
    if token:
        credentials = grpc.composite_channel_credentials(
            credentials, grpc.access_token_call_credentials(token))
    return credentials


def secure_channel(target: str, security: Security, options: list) -> grpc.Channel:
    """A sync channel to ``target`` with ``security``."""
    credentials = channel_credentials(target, security)
    if credentials is None:
        return grpc.insecure_channel(target, options=options)
    return grpc.secure_channel(target, credentials, options=options)


def secure_aio_channel(target: str, security: Security, options: list) -> "grpc.aio.Channel":
    """An asyncio channel to ``target`` with ``security``."""
    import grpc.aio
    credentials = channel_credentials(target, security)
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=options)
    return grpc.aio.secure_channel(target, credentials, options=options)


__all__ = ["Security", "TOKEN_ENV", "channel_credentials", "is_loopback_target",
           "make_security", "secure_aio_channel", "secure_channel"]
