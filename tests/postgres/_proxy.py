"""A TCP relay in front of the real server that can cut a connection at its COMMIT.

Not a mock: every byte goes to and from the real PostgreSQL server. It only
decides when a connection dies, which a test cannot time precisely with
``pg_terminate_backend``: just before the COMMIT reaches the server (the
transaction is rolled back), or just after the server answered it (committed,
but the client never hears so).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Literal

__all__ = ["CutProxy"]

Cut = Literal["none", "before_commit", "after_commit", "hold_commit"]


def _close(*socks: socket.socket) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()


class CutProxy:
    """Relays 127.0.0.1:``port`` to the server at 127.0.0.1:``target``.

    ``cut`` applies to the next COMMIT seen, then resets to ``"none"``:
    ``"hold_commit"`` swallows it and keeps the connection open (``held`` is
    set), so that the transaction is still open when the server is killed.
    ``refuse`` closes new connections at once (the server looks unreachable).
    """

    def __init__(self, target: int) -> None:
        self.target = target
        self.cut: Cut = "none"
        self.refuse = False
        self.cuts_done = 0
        self.held = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        _close(self._listener)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.refuse:
                _close(client)
                continue
            try:
                server = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                _close(client)
                continue
            cut_after_reply = threading.Event()
            threading.Thread(
                target=self._upstream, args=(client, server, cut_after_reply), daemon=True
            ).start()
            threading.Thread(
                target=self._downstream, args=(client, server, cut_after_reply), daemon=True
            ).start()

    def _take_cut(self, data: bytes) -> Cut:
        if b"COMMIT\x00" not in data:
            return "none"
        with self._lock:
            cut, self.cut = self.cut, "none"
            if cut != "none":
                self.cuts_done += 1
            return cut

    def _upstream(
        self, client: socket.socket, server: socket.socket, cut_after_reply: threading.Event
    ) -> None:
        try:
            while data := client.recv(65536):
                cut = self._take_cut(data)
                if cut == "before_commit":
                    break
                if cut == "hold_commit":
                    self.held.set()
                    continue
                if cut == "after_commit":
                    cut_after_reply.set()
                server.sendall(data)
        except OSError:
            pass
        if not cut_after_reply.is_set():
            _close(client, server)

    def _downstream(
        self, client: socket.socket, server: socket.socket, cut_after_reply: threading.Event
    ) -> None:
        try:
            while data := server.recv(65536):
                if cut_after_reply.is_set():
                    break  # the server has answered the COMMIT: the client never hears it
                client.sendall(data)
        except OSError:
            pass
        _close(client, server)
