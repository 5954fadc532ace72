"""A TCP proxy in front of the real S3 server that records each PUT and can hold back the answers.

Holding the answers makes a crash land where it matters for at-least-once delivery: the object is in
the bucket (the server stored it) but the writer has not heard so, so it has not committed the
Kafka offsets; the next consumer must write those records again.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from urllib.parse import unquote, urlsplit

REQUEST = re.compile(rb"(?:^|\r\n)PUT (/[^ ]+) HTTP/1\.1\r\n")


class HoldingProxy:
    def __init__(self, target_url: str) -> None:
        target = urlsplit(target_url)
        self.target = (target.hostname or "127.0.0.1", target.port or 80)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.flowing = threading.Event()
        self.flowing.set()
        self.puts: list[str] = []  # object paths, in the order the PUTs reached the server
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def hold(self) -> None:
        """Keep every answer from now on until ``release``; requests still reach the server."""
        self.flowing.clear()

    def release(self) -> None:
        self.flowing.set()

    def close(self) -> None:
        self.release()
        self.server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, to_server: bool) -> None:
        try:
            while data := src.recv(65536):
                if to_server:
                    with self._lock:
                        self.puts.extend(unquote(m.decode()) for m in REQUEST.findall(data))
                else:
                    self.flowing.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
