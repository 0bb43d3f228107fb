"""HTTPS on `cello serve` and app.run: certificates made by trustme, real clients verifying them.

`cello serve tests/apps/proxied.py --ssl-certfile --ssl-keyfile` on both parsers: httpx and a
raw TLS socket (ALPN), the websockets client over wss://, a plain-HTTP client on the TLS port,
a client that never finishes its handshake, several workers, mutual TLS, and the one-line
errors (exit status 2, ValueError from app.run) for files that cannot work.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme
import websockets.sync.client
from cryptography.hazmat.primitives import serialization
from support.artifacts import ROOT
from support.ports import free_port
from support.servers import RunningServer, start_server

from cello import App
from cello.server.tls import server_context

APP = "tests/apps/proxied.py"
PASSWORD = "correct horse"


@dataclass
class Certs:
    ca: trustme.CA
    directory: Path
    client: trustme.LeafCert

    def path(self, name: str) -> str:
        return str(self.directory / name)

    def client_context(self, with_certificate: bool = False) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        if with_certificate:
            self.client.configure_cert(context)
        return context


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    directory = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    leaf.private_key_pem.write_to_path(str(directory / "key.pem"))
    for index, blob in enumerate(leaf.cert_chain_pems):
        blob.write_to_path(str(directory / "cert.pem"), append=index > 0)
    leaf.private_key_and_cert_chain_pem.write_to_path(str(directory / "combined.pem"))
    ca.issue_cert("elsewhere.example").private_key_pem.write_to_path(str(directory / "other-key.pem"))
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSWORD.encode()),
    )
    (directory / "encrypted-key.pem").write_bytes(encrypted)
    (directory / "not-pem.txt").write_text("this is not a certificate\n")
    return Certs(ca, directory, ca.issue_cert("client@example.org"))


def tls_flags(certs: Certs, key: str = "key.pem") -> tuple[str, ...]:
    return ("--ssl-certfile", certs.path("cert.pem"), "--ssl-keyfile", certs.path(key))


@pytest.fixture(params=["httptools", "h11"])
def server(request: pytest.FixtureRequest, serve_app: Callable[..., RunningServer], certs: Certs) -> RunningServer:
    return serve_app(APP, request.param, "interpreted", *tls_flags(certs))


def https(server: RunningServer) -> str:
    return f"https://127.0.0.1:{server.port}"


def test_https_get(server: RunningServer, certs: Certs) -> None:
    with httpx.Client(verify=certs.client_context(), timeout=10) as client:
        first = client.get(https(server) + "/seen/a%20b?x=1")
        second = client.get(https(server) + "/seen")
        stream = first.extensions["network_stream"]
        ssl_object = stream.get_extra_info("ssl_object")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["scheme"] == "https"
    assert body["url"] == f"https://127.0.0.1:{server.port}/seen/a%20b?x=1"
    assert body["client_ip"] == "127.0.0.1"
    assert second.status_code == 200
    assert second.json()["scheme"] == "https"
    assert ssl_object.selected_alpn_protocol() == "http/1.1"
    assert ssl_object.version() in ("TLSv1.2", "TLSv1.3")


def test_alpn_picks_http11_when_h2_is_offered(server: RunningServer, certs: Certs) -> None:
    context = certs.client_context()
    context.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.selected_alpn_protocol() == "http/1.1"
            tls.sendall(b"GET /seen HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            received = b""
            while chunk := tls.recv(65536):
                received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert json.loads(body)["url"] == "https://localhost/seen"


def test_tls_12_is_accepted(server: RunningServer, certs: Certs) -> None:
    context = certs.client_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with httpx.Client(verify=context, timeout=10) as client:
        response = client.get(https(server) + "/seen")
        assert response.extensions["network_stream"].get_extra_info("ssl_object").version() == "TLSv1.2"
    assert response.json()["scheme"] == "https"


def test_the_context_refuses_old_protocols() -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost")
    with leaf.cert_chain_pems[0].tempfile() as cert, leaf.private_key_pem.tempfile() as key:
        context = server_context(cert, key)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_NONE
    assert context.options & ssl.OP_NO_RENEGOTIATION


def test_wss(server: RunningServer, certs: Certs) -> None:
    url = f"wss://127.0.0.1:{server.port}/ws/seen"
    with websockets.sync.client.connect(url, ssl=certs.client_context(), open_timeout=10) as ws:
        seen = json.loads(ws.recv(timeout=10))
        ws.send("over TLS")
        assert ws.recv(timeout=10) == "echo: over TLS"
    assert seen["scheme"] == "https"
    assert seen["url"] == f"https://127.0.0.1:{server.port}/ws/seen"


def test_plain_http_to_the_tls_port_is_closed(server: RunningServer, certs: Certs) -> None:
    before = server.output()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /seen HTTP/1.1\r\nHost: localhost\r\n\r\n")
        try:
            answer = sock.recv(65536)
        except ConnectionResetError:
            answer = b""
    # No HTTP answer (the bytes are not a TLS handshake), and the server goes on.
    assert not answer.startswith(b"HTTP/")
    with httpx.Client(verify=certs.client_context(), timeout=10) as client:
        assert client.get(https(server) + "/seen").status_code == 200
    added = server.output()[len(before) :]
    assert "Traceback" not in added and "ERROR" not in added, added
    assert server.process.poll() is None


def test_startup_line_says_https(server: RunningServer) -> None:
    assert f"Cello serving on https://127.0.0.1:{server.port} (parser: {server.http})" in server.output()


def test_a_handshake_that_never_comes_is_cut_off(certs: Certs) -> None:
    running = start_server(APP, "httptools", "interpreted", *tls_flags(certs), "--request-head-timeout", "1")
    try:
        with socket.create_connection(("127.0.0.1", running.port), timeout=10) as sock:
            started = time.monotonic()
            sock.sendall(b"\x16\x03\x01")  # the start of a ClientHello, and then nothing
            try:
                assert sock.recv(100) == b""
            except ConnectionResetError:
                pass
            waited = time.monotonic() - started
        assert 0.5 <= waited < 5, waited
        with httpx.Client(verify=certs.client_context(), timeout=10) as client:
            assert client.get(https(running) + "/seen").status_code == 200
    finally:
        assert running.stop() == 0


def test_workers_share_the_context(certs: Certs) -> None:
    running = start_server(APP, "httptools", "interpreted", *tls_flags(certs), "--workers", "2")
    try:
        deadline = time.monotonic() + 30
        while "workers: 2" not in running.output() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert f"Cello serving on https://127.0.0.1:{running.port} (parser: httptools, workers: 2)" in running.output()
        with httpx.Client(verify=certs.client_context(), timeout=10) as client:
            for _ in range(4):
                response = client.get(https(running) + "/seen", headers={"Connection": "close"})
                assert response.json()["scheme"] == "https"
    finally:
        assert running.stop() == 0


def test_mutual_tls(serve_app: Callable[..., RunningServer], certs: Certs) -> None:
    running = serve_app(APP, "h11", "interpreted", *tls_flags(certs), "--ssl-ca-certs", certs.path("ca.pem"))
    with httpx.Client(verify=certs.client_context(with_certificate=True), timeout=10) as client:
        assert client.get(https(running) + "/seen").json()["scheme"] == "https"
    with pytest.raises(httpx.TransportError), httpx.Client(verify=certs.client_context(), timeout=10) as client:
        client.get(https(running) + "/seen")


@pytest.mark.parametrize(
    ("flags", "env"),
    [
        (("--ssl-certfile", "cert.pem", "--ssl-keyfile", "encrypted-key.pem", "--ssl-keyfile-password", PASSWORD), {}),
        (
            ("--ssl-certfile", "cert.pem", "--ssl-keyfile", "encrypted-key.pem"),
            {"CELLO_SSL_KEYFILE_PASSWORD": PASSWORD},
        ),
        (("--ssl-certfile", "combined.pem"), {}),
    ],
    ids=["password-flag", "password-env", "key-in-certfile"],
)
def test_keys_that_load(certs: Certs, flags: tuple[str, ...], env: dict[str, str]) -> None:
    paths = tuple(certs.path(flag) if flag.endswith(".pem") else flag for flag in flags)
    running = start_server(APP, "h11", "interpreted", *paths, env=env)
    try:
        with httpx.Client(verify=certs.client_context(), timeout=10) as client:
            assert client.get(https(running) + "/seen").json()["scheme"] == "https"
    finally:
        assert running.stop() == 0


FAILURES = [
    (
        ("--ssl-certfile", "missing.pem", "--ssl-keyfile", "key.pem"),
        "TLS: cannot read the certificate file {missing.pem}: no such file or directory",
    ),
    (
        ("--ssl-certfile", "cert.pem", "--ssl-keyfile", "missing.pem"),
        "TLS: cannot read the key file {missing.pem}: no such file or directory",
    ),
    (
        ("--ssl-certfile", "cert.pem", "--ssl-keyfile", "other-key.pem"),
        "TLS: the private key in {other-key.pem} does not match the certificate in {cert.pem}",
    ),
    (
        ("--ssl-certfile", "cert.pem", "--ssl-keyfile", "encrypted-key.pem"),
        "TLS: the private key in {encrypted-key.pem} is encrypted: give its password with --ssl-keyfile-password",
    ),
    (
        ("--ssl-certfile", "cert.pem", "--ssl-keyfile", "encrypted-key.pem", "--ssl-keyfile-password", "wrong"),
        "TLS: cannot decrypt the private key in {encrypted-key.pem}: wrong password",
    ),
    (("--ssl-certfile", "not-pem.txt", "--ssl-keyfile", "key.pem"), "TLS: no PEM certificate in {not-pem.txt}"),
    (("--ssl-certfile", "cert.pem"), "TLS: no PEM private key in {cert.pem}"),
    (
        ("--ssl-certfile", "cert.pem", "--ssl-keyfile", "key.pem", "--ssl-ca-certs", "not-pem.txt"),
        "TLS: no usable CA certificate in {not-pem.txt}",
    ),
    (("--ssl-keyfile", "key.pem"), "ssl_keyfile needs ssl_certfile (--ssl-certfile)"),
]


def _in_dir(certs: Certs, text: str) -> str:
    for name in ("missing.pem", "other-key.pem", "encrypted-key.pem", "not-pem.txt", "cert.pem", "key.pem"):
        text = text.replace("{" + name + "}", certs.path(name))
    return text


@pytest.mark.parametrize(("flags", "message"), FAILURES, ids=[message.split("{")[0][:40] for _, message in FAILURES])
def test_files_that_cannot_work_stop_the_start(certs: Certs, flags: tuple[str, ...], message: str) -> None:
    paths = [certs.path(flag) if flag.endswith((".pem", ".txt")) else flag for flag in flags]
    argv = [sys.executable, "-m", "cello", "serve", APP, "--port", str(free_port()), *paths]
    env = {key: value for key, value in os.environ.items() if key != "CELLO_SSL_KEYFILE_PASSWORD"}
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2, result
    assert result.stderr.startswith("error: " + _in_dir(certs, message)), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Cello serving" not in result.stdout + result.stderr


def test_app_run_raises_value_error(certs: Certs) -> None:
    app = App()
    with pytest.raises(ValueError, match="the private key in .* does not match the certificate"):
        app.run(port=free_port(), ssl_certfile=certs.path("cert.pem"), ssl_keyfile=certs.path("other-key.pem"), argv=[])
    with pytest.raises(ValueError, match="cannot read the certificate file"):
        app.run(ssl_certfile=certs.path("missing.pem"), argv=[])
    with pytest.raises(ValueError, match="ssl_ca_certs needs ssl_certfile"):
        app.run(ssl_ca_certs=certs.path("ca.pem"), argv=[])
    with pytest.raises(ValueError, match="forwarded_allow_ips: 'nope' is not an IP address"):
        app.run(forwarded_allow_ips=["nope"], argv=[])


def test_app_run_serves_https(certs: Certs) -> None:
    port = free_port()
    code = (
        "import sys; sys.path.insert(0, 'tests/apps'); from proxied import app; "
        f"app.run(port={port}, logs=False, ssl_certfile={certs.path('cert.pem')!r}, "
        f"ssl_keyfile={certs.path('key.pem')!r}, forwarded_allow_ips='127.0.0.2, 192.0.2.0/24', argv=[])"
    )
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith(f"Cello serving on https://127.0.0.1:{port} "), line + process.stderr.read()
        with httpx.Client(verify=certs.client_context(), timeout=10) as client:
            body = client.get(f"https://127.0.0.1:{port}/seen", headers={"X-Forwarded-For": "203.0.113.7"}).json()
        # The app trusts 127.0.0.1, but app.run's forwarded_allow_ips replaced the list.
        assert (body["scheme"], body["client_ip"]) == ("https", "127.0.0.1")
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)
    assert process.returncode == 0
