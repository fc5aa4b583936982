"""The TCP server: many connections, each an ISMRMRD stream reconstructed on its own.

:class:`MRDServer` listens on ``127.0.0.1`` unless told otherwise and serves each connection
in its own thread (:class:`~mri_unfold.serving.session.StreamSession`), at most
``max_connections`` at once; a connection beyond that gets a TEXT message ``ERR ... busy``
and CLOSE.  The network is shared and reconstructs one slice at a time
(:class:`~mri_unfold.serving.reconstructor.Reconstructor`).

Every failure belongs to its connection: a malformed, oversized, truncated or idle stream, or
data the reconstruction refuses, closes that connection after a TEXT message ``ERR <reason>``
(FIRE shows texts starting with ``ERR`` as errors) and CLOSE; a bug in the server is reported
the same way.  The server goes on serving.  One log line per connection (logger
``mri_unfold.serving``) gives the peer, how it ended and what was received and sent.  The
server writes no files.
"""
from __future__ import annotations

import logging
import socket
import socketserver
import threading
import time
from typing import Callable

from ..errors import UserError
from .protocol import (ProtocolError, StreamLimits, encode_close, encode_text, read_message,
                       socket_reader)
from .reconstructor import Reconstructor
from .session import StreamSession

__all__ = ["MRDServer", "LOGGER", "serve_connection", "is_loopback"]

LOGGER = logging.getLogger("mri_unfold.serving")


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (``127.x.x.x``, ``::1``, ``localhost``)."""
    return host in ("localhost", "::1") or host.startswith("127.")


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


#: After an error, what the client still sends is read and dropped for at most this long (and
#: this many bytes) so that closing does not reset the connection before the client has read
#: the error text.
DRAIN_S, DRAIN_BYTES = 2.0, 64 << 20


def _send_error(sock: socket.socket, reason: str, drain: bool = True) -> None:
    try:
        sock.sendall(encode_text(f"ERR mri-unfold: {reason}") + encode_close())
        if not drain:
            return
        sock.shutdown(socket.SHUT_WR)
        end, seen = time.monotonic() + DRAIN_S, 0
        while seen < DRAIN_BYTES and (left := end - time.monotonic()) > 0:
            sock.settimeout(left)
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            seen += len(chunk)
    except OSError:
        pass  # the peer is gone (or keeps sending): nothing more to tell it


def serve_connection(sock: socket.socket, peer: str, reconstructor: Reconstructor,
                     limits: StreamLimits, log: logging.Logger = LOGGER,
                     release: Callable[[], None] | None = None) -> str:
    """Serve one connection until its CLOSE (or its failure), then close the socket; returns
    how it ended (``"ok"`` or ``"closed: <reason>"``), which is also logged with the counts.
    ``release`` is called before the socket closes (the server frees the connection's slot,
    so a client that reconnects at once is served)."""
    sock.settimeout(limits.idle_timeout_s)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # images leave at once
    session = StreamSession(reconstructor, limits)
    read = socket_reader(sock)
    start, status = time.perf_counter(), "ok"
    try:
        while not session.closed:
            msg = read_message(read, limits)
            if msg is None:
                raise ProtocolError(f"the client disconnected without a close message "
                                    f"({session.pending_slices} incomplete slices dropped)")
            for out in session.handle(msg):
                sock.sendall(out)
    except UserError as e:  # ProtocolError, DataFileError, refused data
        status = f"closed: {_one_line(e)}"
        _send_error(sock, _one_line(e))
    except OSError as e:
        status = f"closed: connection lost ({_one_line(e)})"
    except Exception as e:  # noqa: BLE001 - a bug must not stop the server
        status = f"closed: internal error {type(e).__name__}: {_one_line(e)}"
        log.debug("internal error on %s", peer, exc_info=True)
        _send_error(sock, f"internal error ({type(e).__name__})")
    finally:
        if release is not None:
            release()
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
    log.info("%s %s after %.2f s: %s", peer, status, time.perf_counter() - start,
             session.summary())
    return status


class MRDServer(socketserver.ThreadingTCPServer):
    """An ISMRMRD streaming server (module doc).

    Args:
        address: ``(host, port)``; port 0 picks a free port (see ``server_address``).
        reconstructor: the shared network or method.
        limits: message and buffer limits, idle timeout.
        max_connections: connections served at once (>= 1).
    Raises:
        UserError: ``max_connections`` < 1.  OSError: the address cannot be bound.
    """

    allow_reuse_address = True
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], reconstructor: Reconstructor, *,
                 limits: StreamLimits | None = None, max_connections: int = 4,
                 log: logging.Logger = LOGGER):
        if max_connections < 1:
            raise UserError(f"max_connections must be >= 1, got {max_connections}")
        self.reconstructor = reconstructor
        self.limits = limits or StreamLimits()
        self.max_connections = int(max_connections)
        self.log = log
        self.active = 0
        self.served = 0
        self._count_lock = threading.Lock()
        self._refusals = threading.BoundedSemaphore(16)
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, None)

    @property
    def port(self) -> int:
        """The port listened on."""
        return int(self.server_address[1])

    def process_request(self, request, client_address):
        with self._count_lock:
            busy = self.active >= self.max_connections
            if not busy:
                self.active += 1
        if busy:  # told in a thread of its own: the accept loop never waits on a client
            if self._refusals.acquire(blocking=False):
                threading.Thread(target=self._refuse, args=(request, client_address),
                                 daemon=True).start()
            else:  # a flood of connections: no thread, no explanation
                self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def _refuse(self, request, client_address) -> None:
        reason = (f"server busy: {self.max_connections} connections are being served "
                  "(serve --max-connections); try again when a scan has finished")
        try:
            _send_error(request, reason)
            self.shutdown_request(request)
            self.log.info("%s:%s closed: %s", client_address[0], client_address[1], reason)
        finally:
            self._refusals.release()

    def _release(self) -> None:
        with self._count_lock:
            self.active -= 1
            self.served += 1

    def process_request_thread(self, request, client_address):
        serve_connection(request, f"{client_address[0]}:{client_address[1]}",
                         self.reconstructor, self.limits, self.log, release=self._release)

    def start_in_thread(self) -> threading.Thread:
        """Serve in a background thread (tests, benchmarks); stop with ``shutdown()`` and
        ``server_close()``."""
        t = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                             daemon=True, name="mri-unfold-serve")
        t.start()
        return t
