"""TCP with mutual TLS: the only way dockyardd listens beyond its UNIX socket."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess

import pytest
from conftest import dockyard_cli


def openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make test certificates (apt-get install openssl)")
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", "ca-key.pem", "-out", "ca.pem", cwd=d)
    for name, usage, san in (("server", "serverAuth", "subjectAltName=IP:127.0.0.1"),
                             ("client", "clientAuth", None)):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}-key.pem", "-out", f"{name}.csr", cwd=d)
        extensions = d / f"{name}.ext"
        extensions.write_text(f"extendedKeyUsage={usage}\n" + (f"{san}\n" if san else ""))
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
                "-CAcreateserial", "-days", "2", "-extfile", str(extensions),
                "-out", f"{name}.pem", cwd=d)
    client_dir = d / "client"
    client_dir.mkdir()
    shutil.copy(d / "ca.pem", client_dir / "ca.pem")
    shutil.copy(d / "client.pem", client_dir / "cert.pem")
    shutil.copy(d / "client-key.pem", client_dir / "key.pem")
    return d


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def tls_daemon(make_daemon, pki):
    port = free_port()
    daemon = make_daemon("tls", "-H", f"tcp://127.0.0.1:{port}", "--tlsverify",
                         "--tlscacert", str(pki / "ca.pem"), "--tlscert", str(pki / "server.pem"),
                         "--tlskey", str(pki / "server-key.pem"))
    daemon.start()
    return daemon, port


def test_docker_cli_over_mutual_tls(tls_daemon, pki):
    daemon, port = tls_daemon
    result = subprocess.run(
        ["docker", "--tlsverify", "--tlscacert", str(pki / "ca.pem"),
         "--tlscert", str(pki / "client.pem"), "--tlskey", str(pki / "client-key.pem"),
         "-H", f"tcp://127.0.0.1:{port}", "version", "--format", "{{.Server.APIVersion}}"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "DOCKER_CONFIG": str(daemon.root / "cfg")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1.44"


def test_dockyard_cli_over_mutual_tls(tls_daemon, pki):
    daemon, port = tls_daemon
    result = dockyard_cli("version", host=f"tcp://127.0.0.1:{port}",
                          env={"DOCKYARD_CERT_PATH": str(pki / "client")})
    assert "Server: Dockyard Engine" in result.stdout


def test_a_client_without_a_certificate_is_turned_away(tls_daemon, pki):
    _, port = tls_daemon
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
                if not tls.recv(100):  # TLS 1.3 reports the refusal on first read
                    raise ConnectionError("closed without an answer")
