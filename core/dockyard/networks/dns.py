"""The embedded DNS server: what containers on user-defined networks find at 127.0.0.11:53.

Names the engine owns (container names, aliases, hostnames) are answered from a lookup the
network manager supplies per container; everything else is relayed to the host's resolvers.
No firewall rules are involved: a socket keeps the network namespace it was created in, so a
short-lived thread enters each container's namespace just to bind the listening sockets there,
and one daemon thread serves them all from the host namespace. Forwarded queries leave from
sockets created in the host namespace, so a host resolver on 127.0.0.53 or 127.0.0.1 works.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import logging
import os
import secrets
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import BinaryIO

from dockyard.plugin.netns import run_in_netns

log = logging.getLogger(__name__)

Lookup = Callable[[str], list[IPv4Address] | None]
ReverseLookup = Callable[[IPv4Address], str | None]
Upstream = tuple[str, int]

TYPE_A, TYPE_CNAME, TYPE_PTR, TYPE_AAAA = 1, 5, 12, 28
CLASS_IN = 1
NOERROR, SERVFAIL, NOTIMP = 0, 2, 4
TTL = 600  # what Docker's embedded server gives its own names
MAX_FORWARDS = 100  # queries in flight to upstreams; Docker's limit too
TCP_IDLE_SECONDS = 5.0
CLONE_NEWNET = 0x40000000

_HEADER = struct.Struct("!6H")
_QR, _OPCODE, _RD, _RA = 0x8000, 0x7800, 0x0100, 0x0080


# --- messages ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Query:
    id: int
    flags: int
    name: str  # lower-case, no trailing dot
    qtype: int
    qclass: int
    question: bytes  # as sent: clients may check the case of the name they get back
    raw: bytes


@dataclass(frozen=True)
class Record:
    name: str
    rtype: int
    ttl: int
    data: object  # an IP address for A/AAAA, a name for PTR/CNAME, bytes otherwise


@dataclass(frozen=True)
class Answer:
    id: int
    flags: int
    rcode: int
    records: list[Record]

    @property
    def addresses(self) -> list[IPv4Address]:
        return [r.data for r in self.records if r.rtype == TYPE_A]


def encode_name(name: str) -> bytes:
    labels = [label for label in name.split(".") if label]
    return b"".join(bytes([len(e)]) + e for e in (label.encode("idna") for label in labels)) + b"\0"


def read_name(packet: bytes, offset: int) -> tuple[str, int]:
    """The name at `offset` (following compression pointers) and the offset just past it."""
    labels: list[str] = []
    end, jumps, length = None, 0, 0
    while True:
        size = packet[offset]
        if size & 0xC0 == 0xC0:
            jumps += 1
            if jumps > 64:
                raise ValueError("compression loop")
            end = offset + 2 if end is None else end
            offset = ((size & 0x3F) << 8) | packet[offset + 1]
            continue
        if size & 0xC0:
            raise ValueError("unknown label type")
        if size == 0:
            return ".".join(labels), offset + 1 if end is None else end
        label = packet[offset + 1:offset + 1 + size]
        length += size + 1
        if len(label) != size or length > 255:
            raise ValueError("truncated or oversized name")
        labels.append(label.decode("latin-1"))
        offset += size + 1


def build_query(name: str, qtype: int = TYPE_A, query_id: int | None = None) -> bytes:
    query_id = secrets.randbits(16) if query_id is None else query_id
    question = encode_name(name) + struct.pack("!HH", qtype, CLASS_IN)
    return _HEADER.pack(query_id, _RD, 1, 0, 0, 0) + question


def parse_query(packet: bytes) -> Query | None:
    """A query with one question, or None for anything else (responses, garbage)."""
    try:
        query_id, flags, questions = _HEADER.unpack_from(packet)[:3]
        if flags & _QR or questions != 1:
            return None
        name, offset = read_name(packet, _HEADER.size)
        qtype, qclass = struct.unpack_from("!HH", packet, offset)
    except (struct.error, IndexError, ValueError):
        return None
    return Query(query_id, flags, name.lower(), qtype, qclass, packet[_HEADER.size:offset + 4], packet)


def parse_answer(packet: bytes) -> Answer:
    """Decode a reply (raises ValueError when it is not one)."""
    try:
        query_id, flags, questions, answers = _HEADER.unpack_from(packet)[:4]
        offset = _HEADER.size
        for _ in range(questions):
            offset = read_name(packet, offset)[1] + 4
        records = []
        for _ in range(answers):
            name, offset = read_name(packet, offset)
            rtype, _class, ttl, size = struct.unpack_from("!HHIH", packet, offset)
            offset += 10
            rdata = packet[offset:offset + size]
            if rtype in (TYPE_A, TYPE_AAAA):
                data: object = ipaddress.ip_address(rdata)
            elif rtype in (TYPE_PTR, TYPE_CNAME):
                data = read_name(packet, offset)[0]
            else:
                data = rdata
            records.append(Record(name, rtype, ttl, data))
            offset += size
    except (struct.error, IndexError) as exc:
        raise ValueError(f"malformed DNS message: {exc}") from exc
    return Answer(query_id, flags, flags & 0xF, records)


def build_reply(query: Query, rcode: int = NOERROR, records: Sequence[tuple[int, bytes]] = ()) -> bytes:
    """A reply echoing the question; each record is (type, rdata) owned by the question's name."""
    flags = _QR | (query.flags & (_OPCODE | _RD)) | _RA | rcode
    answers = b"".join(struct.pack("!HHHIH", 0xC000 | _HEADER.size, rtype, CLASS_IN, TTL, len(rdata)) + rdata
                       for rtype, rdata in records)
    return _HEADER.pack(query.id, flags, 1, len(records), 0, 0) + query.question + answers


def resolv_conf_nameservers(path: str = "/etc/resolv.conf") -> list[Upstream]:
    """The nameservers of a resolv.conf, loopback ones included: forwarding happens in the
    host namespace, where they are reachable (Docker filters them only for containers)."""
    servers = []
    try:
        with open(path, encoding="utf-8", errors="replace") as conf:
            for line in conf:
                words = line.split()
                if len(words) >= 2 and words[0] == "nameserver":
                    try:
                        servers.append((str(ipaddress.ip_address(words[1].split("%")[0])), 53))
                    except ValueError:
                        log.warning("%s: ignoring nameserver %r", path, words[1])
    except OSError as exc:
        log.warning("cannot read %s: %s", path, exc)
    return servers


# --- the server --------------------------------------------------------------------------

@dataclass(eq=False)
class _Listener:
    key: str
    udp: socket.socket
    tcp: socket.socket
    lookup: Lookup
    reverse: ReverseLookup | None
    connections: set[socket.socket] = field(default_factory=set)

    def close(self) -> None:
        for conn in list(self.connections):
            _quietly(conn.shutdown, socket.SHUT_RDWR)  # the worker reading it then closes it
        self.udp.close()
        self.tcp.close()


@dataclass(eq=False)
class _Forward:
    query: Query
    reply_to: Callable[[bytes], None]
    upstreams: list[Upstream]
    sock: socket.socket | None = None
    deadline: float = 0.0


class EmbeddedDns:
    """One serving thread for every listener. `lookup(name)` gets a lower-case name without
    the trailing dot and returns its addresses, [] for an owned name without any, or None for
    a name to forward; it is called from the serving thread and from TCP workers. Listeners
    may be added and removed from any thread."""

    def __init__(self, upstreams: Sequence[Upstream] | None = None, *, timeout: float = 2.0) -> None:
        self._fixed_upstreams = list(upstreams) if upstreams is not None else None
        self._host_upstreams: tuple[float, list[Upstream]] = (-1.0, [])
        self._timeout = timeout
        self._lock = threading.Lock()
        self._listeners: dict[str, _Listener] = {}
        self._changes: list[tuple[Callable[[], object], Future]] = []
        self._forwards: set[_Forward] = set()
        self._thread: threading.Thread | None = None
        self._selector: selectors.BaseSelector | None = None
        self._tcp_workers: ThreadPoolExecutor | None = None
        self._stopping = False

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._selector = selectors.DefaultSelector()
            self._wake_reader, self._wake_writer = socket.socketpair()
            self._wake_reader.setblocking(False)
            self._wake_writer.setblocking(False)
            self._selector.register(self._wake_reader, selectors.EVENT_READ, self._drain_wakeups)
            for listener in self._listeners.values():
                self._register(listener)
            self._tcp_workers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="dns tcp")
            self._stopping = False
            self._thread = threading.Thread(target=self._serve, name="embedded dns", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._lock:
            thread = self._thread
            if thread is None:
                self._close_listeners()
                return
            self._stopping = True
        self._wake()
        thread.join()

    def add_listener(self, key: str, netns_path: str | None, lookup: Lookup, address: str = "127.0.0.11",
                     port: int = 53, *, reverse: ReverseLookup | None = None) -> tuple[str, int]:
        """Serve `key`'s names on address:port in the namespace at `netns_path` (None: this one).
        `reverse`, if given, names container IPs for PTR queries (None: not ours, forward)."""
        self._in_loop(functools.partial(self._discard, key))  # frees the address for a re-add
        udp, tcp = run_in_netns(netns_path, functools.partial(_bind_pair, address, port),
                                    name="dns listener netns")
        bound = udp.getsockname()[:2]
        self._in_loop(functools.partial(self._install, _Listener(key, udp, tcp, lookup, reverse)))
        return bound

    def remove_listener(self, key: str) -> None:
        self._in_loop(functools.partial(self._discard, key))

    # Changes to the listeners run on the serving thread, which owns the selector.

    def _in_loop(self, change: Callable[[], object]) -> object:
        with self._lock:
            if self._thread is None or threading.current_thread() is self._thread:
                return change()
            done: Future = Future()
            self._changes.append((change, done))
        self._wake()
        return done.result()

    def _run_changes(self) -> None:
        """Run the queued changes (the caller holds the lock)."""
        changes, self._changes = self._changes, []
        for change, done in changes:
            try:
                done.set_result(change())
            except BaseException as exc:
                done.set_exception(exc)

    def _install(self, listener: _Listener) -> None:
        self._discard(listener.key)
        self._listeners[listener.key] = listener
        if self._selector is not None:
            self._register(listener)

    def _discard(self, key: str) -> None:
        listener = self._listeners.pop(key, None)
        if listener is None:
            return
        if self._selector is not None:
            self._selector.unregister(listener.udp)
            self._selector.unregister(listener.tcp)
        listener.close()

    def _register(self, listener: _Listener) -> None:
        read = selectors.EVENT_READ
        self._selector.register(listener.udp, read, functools.partial(self._on_udp, listener))
        self._selector.register(listener.tcp, read, functools.partial(self._on_accept, listener))

    def _close_listeners(self) -> None:
        for key in list(self._listeners):
            self._discard(key)

    def _wake(self) -> None:
        _quietly(self._wake_writer.send, b"\0")  # a full pipe is already a wake-up

    def _drain_wakeups(self) -> None:
        _quietly(self._wake_reader.recv, 4096)

    def _serve(self) -> None:
        try:
            while not self._stopping:
                with self._lock:
                    self._run_changes()
                deadlines = [forward.deadline for forward in self._forwards]
                timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
                for key, _events in self._selector.select(timeout):
                    try:
                        key.data()
                    except Exception:  # one bad packet or callback must not end the server
                        log.exception("embedded DNS: handling an event failed")
                now = time.monotonic()
                for forward in [f for f in self._forwards if f.deadline <= now]:
                    self._send_upstream(forward)
        finally:
            with self._lock:
                self._thread = None
                self._run_changes()
                for forward in list(self._forwards):
                    self._end_forward(forward)
                self._close_listeners()
                self._selector.close()
                self._selector = None
                self._wake_reader.close()
                self._wake_writer.close()
                self._tcp_workers.shutdown(wait=False, cancel_futures=True)

    # Answering.

    def _local_reply(self, listener: _Listener, query: Query) -> bytes | None:
        """The reply for a name we own, or None to forward the query."""
        if query.flags & _OPCODE:
            return build_reply(query, NOTIMP)
        if query.qclass != CLASS_IN or not query.name:
            return None
        try:
            if query.qtype == TYPE_PTR and listener.reverse is not None:
                target = _reverse_name(query.name, listener.reverse)
                if target is None:
                    return None
                return build_reply(query, records=[(TYPE_PTR, encode_name(target))])
            addresses = listener.lookup(query.name)
        except Exception:
            log.exception("embedded DNS: lookup of %r failed", query.name)
            return build_reply(query, SERVFAIL)
        if addresses is None:
            return None
        if query.qtype != TYPE_A:
            return build_reply(query)  # owned names have no AAAA, MX...: empty NOERROR, no waiting
        return build_reply(query, records=[(TYPE_A, address.packed) for address in addresses])

    def _upstreams(self) -> list[Upstream]:
        if self._fixed_upstreams is not None:
            return list(self._fixed_upstreams)
        try:
            changed = os.stat("/etc/resolv.conf").st_mtime
        except OSError:
            changed = 0.0
        if changed != self._host_upstreams[0]:
            self._host_upstreams = (changed, resolv_conf_nameservers())
        return list(self._host_upstreams[1])

    def _on_udp(self, listener: _Listener) -> None:
        try:
            packet, client = listener.udp.recvfrom(65535)
        except (BlockingIOError, InterruptedError):
            return
        query = parse_query(packet)
        if query is None:
            log.debug("embedded DNS: ignoring a malformed packet from %s", client)
            return
        reply_to = functools.partial(_send_datagram, listener.udp, client)
        reply = self._local_reply(listener, query)
        if reply is not None:
            reply_to(reply)
        elif len(self._forwards) >= MAX_FORWARDS:
            reply_to(build_reply(query, SERVFAIL))
        else:
            self._send_upstream(_Forward(query, reply_to, self._upstreams()))

    def _send_upstream(self, forward: _Forward) -> None:
        """Send the query to the next upstream; SERVFAIL to the client when none is left."""
        self._end_forward(forward)
        while forward.upstreams:
            upstream = forward.upstreams.pop(0)
            sock = socket.socket(_family(upstream[0]), socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                sock.connect(upstream)  # connected: ICMP refusals surface, strangers' replies don't
                sock.send(forward.query.raw)
            except OSError as exc:
                log.debug("embedded DNS: upstream %s: %s", upstream, exc)
                sock.close()
                continue
            forward.sock, forward.deadline = sock, time.monotonic() + self._timeout
            self._selector.register(sock, selectors.EVENT_READ, functools.partial(self._on_upstream, forward))
            self._forwards.add(forward)
            return
        forward.reply_to(build_reply(forward.query, SERVFAIL))

    def _on_upstream(self, forward: _Forward) -> None:
        try:
            reply = forward.sock.recv(65535)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # refused: try the next one now rather than at the deadline
            self._send_upstream(forward)
            return
        if len(reply) >= _HEADER.size and reply[:2] == forward.query.raw[:2] and reply[2] & 0x80:
            self._end_forward(forward)
            forward.reply_to(reply)

    def _end_forward(self, forward: _Forward) -> None:
        self._forwards.discard(forward)
        if forward.sock is not None:
            self._selector.unregister(forward.sock)
            forward.sock.close()
            forward.sock = None

    # TCP: rare (truncated answers, some clients), so each connection gets a worker thread
    # with blocking sockets; workers never change namespace, so their upstream sockets are
    # the host's too.

    def _on_accept(self, listener: _Listener) -> None:
        try:
            conn, _peer = listener.tcp.accept()
        except (BlockingIOError, InterruptedError):
            return
        listener.connections.add(conn)
        self._tcp_workers.submit(self._serve_connection, listener, conn)

    def _serve_connection(self, listener: _Listener, conn: socket.socket) -> None:
        try:
            conn.settimeout(TCP_IDLE_SECONDS)
            stream = conn.makefile("rb")
            while (packet := _read_framed(stream)) is not None:
                query = parse_query(packet)
                if query is None:
                    return  # no way to resynchronise on a stream
                reply = self._local_reply(listener, query) or self._forward_over_tcp(query)
                conn.sendall(struct.pack("!H", len(reply)) + reply)
        except OSError:
            pass
        except Exception:
            log.exception("embedded DNS: TCP connection failed")
        finally:
            listener.connections.discard(conn)
            conn.close()

    def _forward_over_tcp(self, query: Query) -> bytes:
        for upstream in self._upstreams():
            try:
                with socket.create_connection(upstream, timeout=self._timeout) as conn:
                    conn.sendall(struct.pack("!H", len(query.raw)) + query.raw)
                    reply = _read_framed(conn.makefile("rb"))
            except OSError as exc:
                log.debug("embedded DNS: upstream %s over TCP: %s", upstream, exc)
                continue
            if reply is not None and reply[:2] == query.raw[:2]:
                return reply
        return build_reply(query, SERVFAIL)


def _reverse_name(name: str, reverse: ReverseLookup) -> str | None:
    octets = name.removesuffix(".in-addr.arpa").split(".")
    if not name.endswith(".in-addr.arpa") or len(octets) != 4:
        return None
    try:
        address = IPv4Address(".".join(reversed(octets)))
    except ValueError:
        return None
    return reverse(address)


def _read_framed(stream: BinaryIO) -> bytes | None:
    """One length-prefixed message; None when the stream ends first."""
    prefix = stream.read(2)
    if len(prefix) < 2:
        return None
    size = struct.unpack("!H", prefix)[0]
    message = stream.read(size)
    return message if len(message) == size else None


def _send_datagram(sock: socket.socket, client: object, data: bytes) -> None:
    _quietly(sock.sendto, data, client)  # the listener may have gone meanwhile


def _quietly(action: Callable, *args: object) -> None:
    try:
        action(*args)
    except OSError:
        pass


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _bind_pair(address: str, port: int) -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket on the same address and port (port 0: any free one)."""
    for _attempt in range(20):
        udp = socket.socket(_family(address), socket.SOCK_DGRAM)
        tcp = socket.socket(_family(address), socket.SOCK_STREAM)
        try:
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            udp.bind((address, port))
            tcp.bind((address, udp.getsockname()[1]))
            tcp.listen(64)
            udp.setblocking(False)
            tcp.setblocking(False)
            return udp, tcp
        except OSError as exc:
            udp.close()
            tcp.close()
            if port != 0 or exc.errno != errno.EADDRINUSE:  # only a port-0 clash is worth a retry
                raise
    raise OSError(f"no port free for both UDP and TCP on {address}")


