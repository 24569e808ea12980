"""A real S3-compatible server for the tests: moto's standalone server on 127.0.0.1.

Started in a subprocess on a free port by the ``s3`` fixture of ``test_s3.py`` and stopped at
the end of the session; nothing leaves the loopback. The AWS variables point at it only inside
the fixture (``monkeypatch``), never globally.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

KEY = "testing"
SECRET = "testing"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def moto_server(extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """Run ``python -m moto.server`` on 127.0.0.1; yield its endpoint URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(extra_env or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the moto server did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def s3_filesystem(url: str, key: str = KEY, secret: str = SECRET) -> Any:
    """A pyarrow S3 filesystem on the server at ``url`` that may create buckets (test set-up)."""
    from pyarrow import fs

    return fs.S3FileSystem(
        endpoint_override=url.removeprefix("http://"),
        scheme="http",
        access_key=key,
        secret_key=secret,
        region=REGION,
        allow_bucket_creation=True,
    )
