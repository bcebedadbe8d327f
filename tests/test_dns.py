"""The embedded DNS server: owned names answered, the rest relayed to (fake) upstreams.

Traffic stays on loopback and inside namespaces the tests create: the upstream resolver is
a fake one on 127.0.0.1, and the addresses in answers are never contacted.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from ipaddress import IPv4Address

import pytest
from dockyard.networks.dns import (
    NOTIMP,
    SERVFAIL,
    TYPE_A,
    TYPE_AAAA,
    TYPE_PTR,
    EmbeddedDns,
    build_query,
    parse_answer,
    resolv_conf_nameservers,
)

NAMES = {
    "web": [IPv4Address("10.89.0.2")],
    "db": [IPv4Address("10.89.0.3"), IPv4Address("10.89.1.3")],
    "sleeper": [],
}
UPSTREAM_ANSWER = IPv4Address("192.0.2.7")  # documentation range: only ever a payload


def lookup(name: str) -> list[IPv4Address] | None:
    return NAMES.get(name)


class FakeUpstream:
    """A resolver on 127.0.0.1 answering every A query with UPSTREAM_ANSWER (UDP and TCP),
    or, when silent, reading queries and never replying."""

    def __init__(self, silent: bool = False) -> None:
        self.silent = silent
        self.queries: list[bytes] = []
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.address = self.udp.getsockname()
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(self.address)
        self.tcp.listen(8)
        for serve in (self._serve_udp, self._serve_tcp):
            threading.Thread(target=serve, daemon=True).start()

    def answer(self, query: bytes) -> bytes:
        end = query.index(b"\0", 12) + 5
        header = struct.pack("!HHHHHH", struct.unpack("!H", query[:2])[0], 0x8180, 1, 1, 0, 0)
        record = struct.pack("!HHHIH", 0xC00C, TYPE_A, 1, 30, 4) + UPSTREAM_ANSWER.packed
        return header + query[12:end] + record

    def _serve_udp(self) -> None:
        while True:
            try:
                query, client = self.udp.recvfrom(4096)
            except OSError:
                return
            self.queries.append(query)
            if not self.silent:
                self.udp.sendto(self.answer(query), client)

    def _serve_tcp(self) -> None:
        while True:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            with conn:
                size = struct.unpack("!H", conn.recv(2, socket.MSG_WAITALL))[0]
                query = conn.recv(size, socket.MSG_WAITALL)
                self.queries.append(query)
                reply = self.answer(query)
                conn.sendall(struct.pack("!H", len(reply)) + reply)

    def close(self) -> None:
        self.udp.close()
        self.tcp.shutdown(socket.SHUT_RDWR)
        self.tcp.close()


def ask(server: tuple[str, int], packet: bytes, timeout: float = 3.0) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(packet, server)
        return sock.recv(65535)


def ask_tcp(conn: socket.socket, packet: bytes) -> bytes:
    conn.sendall(struct.pack("!H", len(packet)) + packet)
    with conn.makefile("rb") as stream:  # reads until it has the bytes asked for
        return stream.read(struct.unpack("!H", stream.read(2))[0])


def closed_port() -> tuple[str, int]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()


@pytest.fixture
def upstream():
    fake = FakeUpstream()
    yield fake
    fake.close()


@pytest.fixture
def make_server():
    servers: list[EmbeddedDns] = []

    def make(upstreams, timeout: float = 2.0, **listener) -> tuple[EmbeddedDns, tuple[str, int]]:
        dns = EmbeddedDns(upstreams, timeout=timeout)
        servers.append(dns)
        dns.start()
        return dns, dns.add_listener("c1", None, lookup, "127.0.0.1", 0, **listener)

    yield make
    for dns in servers:
        dns.stop()


@pytest.fixture
def server(make_server, upstream):
    return make_server([upstream.address])[1]


@pytest.mark.parametrize("name", ["web", "WEB.", "Web"])
def test_owned_name_is_answered_with_its_address(server, upstream, name):
    answer = parse_answer(ask(server, build_query(name, TYPE_A, query_id=0x1234)))
    assert (answer.id, answer.rcode, answer.addresses) == (0x1234, 0, [IPv4Address("10.89.0.2")])
    assert [record.ttl for record in answer.records] == [600]
    assert upstream.queries == []


def test_name_with_several_addresses_gets_them_all(server):
    assert parse_answer(ask(server, build_query("db"))).addresses == NAMES["db"]


@pytest.mark.parametrize(("name", "qtype"), [("web", TYPE_AAAA), ("web", 15), ("sleeper", TYPE_A)])
def test_owned_name_without_such_records_gets_an_empty_noerror(server, upstream, name, qtype):
    answer = parse_answer(ask(server, build_query(name, qtype)))
    assert (answer.rcode, answer.records) == (0, [])
    assert upstream.queries == []


@pytest.mark.parametrize("name", ["example.org", "web.corp.example"])  # the second: a search domain not ours
def test_other_names_are_relayed_from_the_upstream(server, upstream, name):
    query = build_query(name, query_id=0xBEEF)
    answer = parse_answer(ask(server, query))
    assert (answer.id, answer.rcode, answer.addresses) == (0xBEEF, 0, [UPSTREAM_ANSWER])
    assert upstream.queries == [query]  # forwarded unchanged


def test_silent_upstream_gives_servfail_within_the_timeout(make_server):
    silent = FakeUpstream(silent=True)
    try:
        server = make_server([silent.address], timeout=0.3)[1]
        started = time.monotonic()
        answer = parse_answer(ask(server, build_query("example.org", query_id=7)))
        assert (answer.id, answer.rcode) == (7, SERVFAIL)
        assert 0.25 < time.monotonic() - started < 1.5
    finally:
        silent.close()


def test_next_upstream_answers_when_the_first_is_silent(make_server, upstream):
    silent = FakeUpstream(silent=True)
    try:
        server = make_server([silent.address, upstream.address], timeout=0.3)[1]
        assert parse_answer(ask(server, build_query("example.org"))).addresses == [UPSTREAM_ANSWER]
        assert len(silent.queries) == 1
    finally:
        silent.close()


@pytest.mark.parametrize("upstreams", [[], [closed_port()]], ids=["none", "unreachable"])
def test_without_a_working_upstream_unknown_names_fail_promptly(make_server, upstreams):
    server = make_server(upstreams, timeout=5)[1]
    started = time.monotonic()
    assert parse_answer(ask(server, build_query("example.org"))).rcode == SERVFAIL
    assert time.monotonic() - started < 1


def test_malformed_packets_are_ignored_and_the_server_carries_on(server):
    pointer_loop = struct.pack("!6H", 1, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c" + struct.pack("!HH", 1, 1)
    long_label = struct.pack("!6H", 2, 0x0100, 1, 0, 0, 0) + b"\x50web" + struct.pack("!HH", 1, 1)
    a_response = bytes([0, 3, 0x81, 0x80]) + build_query("web")[4:]
    for packet in (b"", b"\x00", os.urandom(11), build_query("web")[:-3], pointer_loop, long_label,
                   a_response, struct.pack("!6H", 4, 0x0100, 2, 0, 0, 0) + build_query("web")[12:] * 2):
        with pytest.raises(TimeoutError):
            ask(server, packet, timeout=0.2)
    assert parse_answer(ask(server, build_query("web"))).addresses == NAMES["web"]


def test_unsupported_opcode_is_refused_as_not_implemented(server):
    status_query = bytearray(build_query("web", query_id=9))
    status_query[2] |= 2 << 3  # opcode STATUS
    assert parse_answer(ask(server, bytes(status_query))).rcode == NOTIMP


def test_failing_lookup_gives_servfail_and_the_server_carries_on(make_server):
    dns, server = make_server([])
    broken = dns.add_listener("broken", None, lambda name: 1 / 0, "127.0.0.1", 0)
    assert parse_answer(ask(broken, build_query("web"))).rcode == SERVFAIL
    assert parse_answer(ask(server, build_query("web"))).addresses == NAMES["web"]


def test_queries_over_tcp(server, upstream):
    with socket.create_connection(server, timeout=3) as conn:
        owned = parse_answer(ask_tcp(conn, build_query("web", query_id=11)))
        relayed = parse_answer(ask_tcp(conn, build_query("example.org", query_id=12)))
    assert (owned.id, owned.addresses) == (11, NAMES["web"])
    assert (relayed.id, relayed.addresses) == (12, [UPSTREAM_ANSWER])


def test_reverse_lookups_of_container_addresses(make_server, upstream):
    names = {IPv4Address("10.89.0.2"): "web.frontend"}
    server = make_server([upstream.address], reverse=names.get)[1]
    answer = parse_answer(ask(server, build_query("2.0.89.10.in-addr.arpa", TYPE_PTR)))
    assert [(r.rtype, r.data) for r in answer.records] == [(TYPE_PTR, "web.frontend")]
    ask(server, build_query("9.9.89.10.in-addr.arpa", TYPE_PTR))
    assert len(upstream.queries) == 1  # not a container of ours: forwarded


def test_remove_listener_closes_its_sockets(make_server):
    dns, server = make_server([])
    dns.remove_listener("c1")
    dns.remove_listener("c1")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(server, timeout=1).close()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(server)  # the address is free again


def test_adding_a_key_again_replaces_its_listener(make_server):
    dns, first = make_server([])
    second = dns.add_listener("c1", None, {"web": [IPv4Address("10.89.9.9")]}.get, "127.0.0.1", 0)
    assert parse_answer(ask(second, build_query("web"))).addresses == [IPv4Address("10.89.9.9")]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(first)


def test_listeners_added_before_start_are_served_and_stop_closes_them():
    dns = EmbeddedDns([])
    server = dns.add_listener("early", None, lookup, "127.0.0.1", 0)
    dns.start()
    dns.start()
    assert parse_answer(ask(server, build_query("web"))).addresses == NAMES["web"]
    dns.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(server, timeout=1).close()


def test_listeners_change_from_other_threads_while_queries_flow(server, make_server):
    dns = make_server([])[0]
    failures: list[BaseException] = []

    def churn(worker: int) -> None:
        try:
            for round_ in range(30):
                address = dns.add_listener(f"w{worker}", None, lookup, "127.0.0.1", 0)
                if round_ % 5 == 0:
                    assert parse_answer(ask(address, build_query("web"))).addresses == NAMES["web"]
                dns.remove_listener(f"w{worker}")
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=churn, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for _ in range(20):
        assert parse_answer(ask(server, build_query("db"))).addresses == NAMES["db"]
    for thread in threads:
        thread.join()
    assert failures == []


def test_host_nameservers_come_from_resolv_conf_loopback_ones_included(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("# generated\nsearch corp.example\nnameserver 127.0.0.53\n"
                    "nameserver fe80::1%eth0\n; nameserver 192.0.2.1\nnameserver bogus\noptions edns0\n")
    assert resolv_conf_nameservers(str(conf)) == [("127.0.0.53", 53), ("fe80::1", 53)]
    assert resolv_conf_nameservers(str(tmp_path / "missing")) == []


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")
def test_serves_127_0_0_11_inside_a_network_namespace(make_server, upstream):
    name = "dydns-" + uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        dns = make_server([upstream.address])[0]
        assert dns.add_listener("c", f"/run/netns/{name}", lookup) == ("127.0.0.11", 53)

        def inside(*command: str) -> str:
            result = subprocess.run(["ip", "netns", "exec", name, *command], capture_output=True,
                                    text=True, timeout=30)
            assert result.returncode == 0, (result.stdout, result.stderr)
            return result.stdout

        assert "10.89.0.2" in inside("/bin/busybox", "nslookup", "web", "127.0.0.11")
        assert str(UPSTREAM_ANSWER) in inside("/bin/busybox", "nslookup", "example.org", "127.0.0.11")
        tcp_client = (
            "import socket, struct, sys\n"
            "from dockyard.networks.dns import build_query, parse_answer\n"
            "query = build_query('db')\n"
            "with socket.create_connection(('127.0.0.11', 53), timeout=5) as conn:\n"
            "    conn.sendall(struct.pack('!H', len(query)) + query)\n"
            "    stream = conn.makefile('rb')\n"
            "    reply = stream.read(struct.unpack('!H', stream.read(2))[0])\n"
            "    print(*parse_answer(reply).addresses)\n")
        assert inside(sys.executable, "-c", tcp_client).split() == ["10.89.0.3", "10.89.1.3"]
        dns.remove_listener("c")
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)
