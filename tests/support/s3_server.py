"""An S3-speaking server on loopback for the storage tests: moto's server mode, in a thread.

It binds 127.0.0.1 on a port the kernel picks (port 0, read back after start), so parallel runs
cannot collide. The credentials are dummies handed to the S3 client explicitly; nothing is set in
the process environment.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class S3ServerUnavailable(RuntimeError):
    pass


@dataclass
class S3Server:
    endpoint_url: str
    region: str
    access_key: str
    secret_key: str
    _server: Any

    def stop(self) -> None:
        self._server.stop()


def start_s3_server() -> S3Server:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:  # moto[server] is in the project's test extra
        raise S3ServerUnavailable(f"moto[server] is not installed: {exc}") from exc
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return S3Server(
        endpoint_url=f"http://{host}:{port}",
        region="us-east-1",
        access_key="fieldapp-test",
        secret_key="fieldapp-test-secret",
        _server=server,
    )
