"""Behind a proxy: ``forwarded_allow_ips`` makes request.client, scheme and host follow
``Forwarded`` / ``X-Forwarded-*`` from trusted peers only.

Over the network on `cello serve` (both parsers), uvicorn and hypercorn (tests/apps/proxied.py
trusts 127.0.0.1, 10.0.0.0/8 and 2001:db8::/32). A test reaches the server from 127.0.0.1, a
trusted proxy, or from 127.0.0.2, a peer it does not trust (Linux routes all of 127/8 to the
loopback interface). The parsing rules are also driven directly, and under TestClient.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import websockets.sync.client
from hypothesis import given, settings
from hypothesis import strategies as st
from support.servers import RunningServer
from support.variants import variant_params

from cello import App, Request
from cello.request import WireRequest
from cello.server.http.forwarded import TrustedProxies, parse_forwarded, parse_node
from cello.testing import TestClient

APP = "tests/apps/proxied.py"
TRUSTED_PEER = "127.0.0.1"
UNTRUSTED_PEER = "127.0.0.2"

# `cello serve` on each parser, and the ASGI servers; the router plays no part here.
SERVERS = [param for param in variant_params("proxy") if "compiled" not in str(param.id)]


# -- the rules, without a network --------------------------------------------------------


def wire_request(headers: list[tuple[str, str]], peer: str = "10.0.0.1", scheme: str = "http") -> Request:
    raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    if not any(name == b"host" for name, _ in raw):
        raw.append((b"host", b"internal:8000"))
    return WireRequest("GET", "/p", "q=1", raw, (peer, 50123), scheme, "1.1")


def applied(headers: list[tuple[str, str]], trusted: str = "10.0.0.0/8", peer: str = "10.0.0.1") -> Request:
    proxies = TrustedProxies.parse(trusted)
    assert proxies is not None
    request = wire_request(headers, peer)
    proxies.apply_if_trusted(request)
    return request


def view(request: Request) -> tuple[Any, str, str]:
    return request.client, request.scheme, request.host


def test_no_entries_means_nobody_is_trusted() -> None:
    assert TrustedProxies.parse(None) is None
    assert TrustedProxies.parse([]) is None
    assert TrustedProxies.parse("") is None
    assert TrustedProxies.parse(" , ") is None


@pytest.mark.parametrize(
    ("entries", "peer", "trusted"),
    [
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.1", "127.0.0.2", False),
        (["10.0.0.0/8"], "10.255.1.2", True),
        (["10.0.0.0/8"], "11.0.0.1", False),
        ("127.0.0.1, 10.0.0.0/8", "10.0.0.9", True),
        (["::1"], "::1", True),
        (["::1"], "0:0:0:0:0:0:0:1", True),  # compared as addresses, not text
        (["2001:db8::/32"], "2001:db8:cafe::17", True),
        (["2001:db8::/32"], "2001:db9::1", False),
        (["10.0.0.0/8"], "::ffff:10.1.1.1", True),  # an IPv4 peer on a dual-stack socket
        (["*"], "198.51.100.1", True),
        (["*"], None, True),
        (["127.0.0.1"], None, False),
        (["127.0.0.1"], "testclient", False),
    ],
)
def test_who_is_trusted(entries: str | list[str], peer: str | None, trusted: bool) -> None:
    proxies = TrustedProxies.parse(entries)
    assert proxies is not None
    assert proxies.trusts(peer) is trusted


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("localhost", "'localhost' is not an IP address or network"),
        ("10.0.0.1/8", "'10.0.0.1/8' has bits set after the prefix: the network is 10.0.0.0/8"),
        ("300.1.1.1", "'300.1.1.1' is not an IP address or network"),
        ("10.0.0.0/33", "'10.0.0.0/33' is not an IP address or network"),
    ],
)
def test_invalid_entries_are_refused_up_front(entry: str, message: str) -> None:
    with pytest.raises(ValueError, match="forwarded_allow_ips: " + message.replace("(", r"\(").replace(".", r"\.")):
        TrustedProxies.parse(["127.0.0.1", entry])
    with pytest.raises(ValueError, match="is not an IP address|has bits set"):
        App(forwarded_allow_ips=[entry])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("for=192.0.2.60;proto=http;by=203.0.113.43", [{"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"}]),
        ('For="[2001:db8:cafe::17]:4711"', [{"for": "[2001:db8:cafe::17]:4711"}]),
        ("for=192.0.2.43, for=198.51.100.17", [{"for": "192.0.2.43"}, {"for": "198.51.100.17"}]),
        ('for=a;host="ex\\"ample.com"', [{"for": "a", "host": 'ex"ample.com'}]),
        ('for="x,y;z"', [{"for": "x,y;z"}]),
        ("for=unknown ;  proto=https", [{"for": "unknown", "proto": "https"}]),
        (",,for=1.2.3.4,", [{"for": "1.2.3.4"}]),
        ('for="unterminated', None),
        ("for", None),
        ("for=", None),
        ("=x", None),
        ("for=1.2.3.4;for=5.6.7.8", None),  # one parameter twice in an element
        ("for=1.2.3.4 junk", None),
        ('for="a\x01b"', None),
        ("for=a b", None),
    ],
)
def test_forwarded_syntax(text: str, expected: list[dict[str, str]] | None) -> None:
    assert parse_forwarded(text) == expected


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("192.0.2.60", "192.0.2.60", 0),
        ("192.0.2.60:8080", "192.0.2.60", 8080),
        ("[2001:db8:cafe::17]", "2001:db8:cafe::17", 0),
        ("[2001:db8:cafe::17]:4711", "2001:db8:cafe::17", 4711),
        ("2001:db8:cafe::17", "2001:db8:cafe::17", 0),
        ("unknown", None, 0),
        ("UNKNOWN:80", None, 80),
        ("_hidden", "_hidden", 0),
        ("_hidden:_port", "_hidden", 0),
        ("192.0.2.60:_p1", "192.0.2.60", 0),
    ],
)
def test_nodes(text: str, host: str | None, port: int) -> None:
    node = parse_node(text)
    assert node is not None
    assert (node.host, node.port) == (host, port)


@pytest.mark.parametrize(
    "text",
    ["", "example.com", "1.2.3", "1.2.3.4:", "1.2.3.4:99999", "1.2.3.4:x", "[1.2.3.4]", "[::1", "[::1]x", "::1:80:zz"],
)
def test_malformed_nodes(text: str) -> None:
    assert parse_node(text) is None


def test_x_forwarded_headers_from_a_trusted_peer() -> None:
    request = applied(
        [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "example.com")]
    )
    assert view(request) == (("203.0.113.7", 0), "https", "example.com")
    assert request.url == "https://example.com/p?q=1"
    assert request.client_ip() == "203.0.113.7"
    # What arrived is still there.
    assert request.headers["host"] == "internal:8000"


def test_forwarded_from_a_trusted_peer() -> None:
    request = applied([("Forwarded", 'for="[2001:db8:cafe::17]:4711";proto=https;host="example.com:8443"')])
    assert view(request) == (("2001:db8:cafe::17", 4711), "https", "example.com:8443")
    assert request.url == "https://example.com:8443/p?q=1"


def test_forwarded_wins_over_x_forwarded() -> None:
    request = applied([("X-Forwarded-For", "198.51.100.1"), ("Forwarded", "for=203.0.113.7;proto=https")])
    assert view(request) == (("203.0.113.7", 0), "https", "internal:8000")
    # Even when the Forwarded header says nothing usable: the X- headers are not a fallback.
    request = applied([("X-Forwarded-For", "198.51.100.1"), ("Forwarded", 'for="broken')])
    assert view(request) == (("10.0.0.1", 50123), "http", "internal:8000")


def test_untrusted_peer_headers_are_ignored() -> None:
    headers = [
        ("X-Forwarded-For", "203.0.113.7"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "evil.example"),
        ("Forwarded", "for=203.0.113.8;proto=https;host=evil.example"),
    ]
    request = applied(headers, trusted="10.0.0.0/8", peer="192.0.2.1")
    assert view(request) == (("192.0.2.1", 50123), "http", "internal:8000")


def test_chain_takes_the_rightmost_untrusted_address() -> None:
    # client (maybe lying) -> 203.0.113.9 -> 10.1.2.3 (trusted) -> 10.0.0.1 (trusted, the peer)
    request = applied([("X-Forwarded-For", "198.51.100.66, 203.0.113.9, 10.1.2.3")])
    assert request.client == ("203.0.113.9", 0)
    request = applied([("X-Forwarded-For", "198.51.100.66"), ("X-Forwarded-For", "203.0.113.9, 10.1.2.3")])
    assert request.client == ("203.0.113.9", 0)  # several header lines are one list
    request = applied([("Forwarded", "for=198.51.100.66, for=203.0.113.9;proto=https, for=10.1.2.3;proto=http")])
    assert view(request) == (("203.0.113.9", 0), "https", "internal:8000")


def test_chain_of_trusted_addresses_only_takes_the_leftmost() -> None:
    request = applied([("X-Forwarded-For", "10.9.9.9, 10.1.2.3")])
    assert request.client == ("10.9.9.9", 0)


def test_everyone_trusted_takes_the_leftmost() -> None:
    request = applied([("X-Forwarded-For", "203.0.113.1, 198.51.100.2")], trusted="*")
    assert request.client == ("203.0.113.1", 0)


def test_proto_and_host_follow_the_chosen_position() -> None:
    # Each proxy appended its scheme and host: the client's are at the client's position.
    request = applied(
        [
            ("X-Forwarded-For", "198.51.100.66, 203.0.113.9, 10.1.2.3"),
            ("X-Forwarded-Proto", "http, https, http"),
            ("X-Forwarded-Host", "a.example, b.example, c.example"),
        ]
    )
    assert view(request) == (("203.0.113.9", 0), "https", "b.example")
    # One value (set, not appended, by the nearest proxy): that one.
    request = applied(
        [
            ("X-Forwarded-For", "198.51.100.66, 203.0.113.9"),
            ("X-Forwarded-Proto", "https, http"),
            ("X-Forwarded-Host", "x"),
        ]
    )
    assert view(request) == (("203.0.113.9", 0), "http", "x")


def test_proto_and_host_without_for() -> None:
    request = applied([("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "example.com")])
    assert view(request) == (("10.0.0.1", 50123), "https", "example.com")
    request = applied([("Forwarded", "proto=https;host=example.com")])
    assert view(request) == (("10.0.0.1", 50123), "https", "example.com")


def test_unknown_and_obfuscated_clients() -> None:
    request = applied([("Forwarded", "for=unknown;proto=https")])
    assert view(request) == (None, "https", "internal:8000")
    assert request.client_ip() is None
    request = applied([("Forwarded", 'for="_gazonk:_port"')])
    assert request.client == ("_gazonk", 0)
    request = applied([("X-Forwarded-For", "unknown")])
    assert request.client is None


@pytest.mark.parametrize(
    "headers",
    [
        [("X-Forwarded-For", "not-an-address")],
        [("X-Forwarded-For", "203.0.113.7, , 10.1.1.1")],
        [("X-Forwarded-For", "")],
        [("X-Forwarded-For", "1.2.3.4:99999")],
        [("Forwarded", 'for="unterminated')],
        [("Forwarded", "for=203.0.113.7;for=198.51.100.1")],
        [("Forwarded", "for=example.com;proto=https")],
        [("Forwarded", "for=[2001:db8::1]")],  # brackets and colons are not token characters
        [("Forwarded", ",")],
    ],
)
def test_malformed_headers_change_nothing(headers: list[tuple[str, str]]) -> None:
    request = applied(headers)
    assert view(request) == (("10.0.0.1", 50123), "http", "internal:8000")


@pytest.mark.parametrize(
    "headers",
    [
        [("X-Forwarded-Proto", "gopher"), ("X-Forwarded-Host", "bad host")],
        [("X-Forwarded-Proto", ""), ("X-Forwarded-Host", "")],
        [("X-Forwarded-Proto", "https\x7f"), ("X-Forwarded-Host", "ex/ample")],
        [("Forwarded", 'proto=ftp;host="a b"')],
    ],
)
def test_invalid_scheme_or_host_is_ignored(headers: list[tuple[str, str]]) -> None:
    request = applied(headers)
    assert (request.scheme, request.host) == ("http", "internal:8000")


@pytest.mark.parametrize(("sent", "scheme"), [("HTTPS", "https"), ("wss", "https"), ("ws", "http"), ("http", "http")])
def test_schemes(sent: str, scheme: str) -> None:
    assert applied([("X-Forwarded-Proto", sent)]).scheme == scheme


_HEADER_TEXT = st.text(
    alphabet=st.sampled_from(list('"\\,;=:[]_ \t.-/1234567890abcdefABCDEF:fFoOrRuUnNkKwWsShHtTpP')), max_size=60
)


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(["Forwarded", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"]),
    values=st.lists(_HEADER_TEXT, min_size=1, max_size=3),
    trusted=st.sampled_from(["*", "10.0.0.0/8", "10.0.0.0/8, ::/0"]),
)
def test_any_header_value_is_read_or_ignored_never_an_error(name: str, values: list[str], trusted: str) -> None:
    request = applied([(name, value) for value in values], trusted=trusted)
    assert request.scheme in ("http", "https")
    assert request.client is None or (isinstance(request.client[0], str) and 0 <= request.client[1] <= 65535)
    assert isinstance(request.host, str) and " " not in request.host


# -- TestClient (the ASGI adapter, in process) -------------------------------------------


def make_app(**options: Any) -> App:
    app = App(**options)

    @app.get("/seen")
    def seen(request: Request) -> dict[str, Any]:
        return {"client": request.client_ip(), "scheme": request.scheme, "host": request.host, "url": request.url}

    return app


SPOOF = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "example.com"}


def test_testclient_trusted_peer() -> None:
    app = make_app(forwarded_allow_ips=["127.0.0.1"])
    with TestClient(app) as client:
        body = client.get("/seen?x=1", headers=SPOOF).json()
    assert body == {
        "client": "203.0.113.7",
        "scheme": "https",
        "host": "example.com",
        "url": "https://example.com/seen?x=1",
    }


def test_testclient_default_trusts_nobody() -> None:
    with TestClient(make_app()) as client:
        body = client.get("/seen", headers=SPOOF).json()
    assert body["client"] == "127.0.0.1"
    assert body["scheme"] == "http"
    assert body["host"] == "testserver"


def test_testclient_untrusted_peer_and_setting_changed_later() -> None:
    app = make_app(forwarded_allow_ips="10.0.0.0/8")  # a comma-separated string works too
    with TestClient(app, client=("192.0.2.1", 1234)) as client:
        assert client.get("/seen", headers=SPOOF).json()["client"] == "192.0.2.1"
    with TestClient(app, client=("10.2.3.4", 1234)) as client:
        assert client.get("/seen", headers=SPOOF).json()["client"] == "203.0.113.7"


def test_testclient_websocket_behind_a_proxy() -> None:
    app = App(forwarded_allow_ips=["*"])

    @app.websocket("/ws")
    async def ws(socket: Any) -> None:
        await socket.accept()
        await socket.send_json({"client": socket.client, "url": socket.url})
        await socket.close()

    with (
        TestClient(app) as client,
        client.websocket_connect(
            "/ws", headers={"Forwarded": 'for="203.0.113.7:99";proto=https;host=example.com'}
        ) as session,
    ):
        assert session.receive_json() == {"client": ["203.0.113.7", 99], "url": "https://example.com/ws"}


# -- over the network ---------------------------------------------------------------------


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest, serve_app: Callable[..., RunningServer]) -> RunningServer:
    kind, router = request.param
    return serve_app(APP, kind, router)


def get(
    server: RunningServer,
    headers: dict[str, str] | list[tuple[str, str]],
    peer: str = TRUSTED_PEER,
    path: str = "/seen",
) -> dict[str, Any]:
    transport = httpx.HTTPTransport(local_address=peer)
    with httpx.Client(transport=transport, timeout=10) as client:
        response = client.get(server.url + path, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_trusted_peer_x_forwarded(server: RunningServer) -> None:
    body = get(
        server,
        {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "example.com"},
        path="/seen/a%20b?x=1",
    )
    assert body["client"] == ["203.0.113.7", 0]
    assert body["client_ip"] == "203.0.113.7"
    assert body["scheme"] == "https"
    assert body["host"] == "example.com"
    assert body["url"] == "https://example.com/seen/a%20b?x=1"
    assert body["host_header"] == f"127.0.0.1:{server.port}"


def test_trusted_peer_forwarded(server: RunningServer) -> None:
    body = get(server, {"Forwarded": 'for="[2001:db8:cafe::17]:4711";proto=https;host=example.com'})
    assert (body["client"], body["scheme"], body["host"]) == (["2001:db8:cafe::17", 4711], "https", "example.com")


def test_untrusted_peer_cannot_spoof(server: RunningServer) -> None:
    headers = {
        "X-Forwarded-For": "203.0.113.7",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "evil.example",
        "Forwarded": "for=203.0.113.8;proto=https;host=evil.example",
    }
    body = get(server, headers, peer=UNTRUSTED_PEER)
    assert body["client_ip"] == UNTRUSTED_PEER
    assert body["scheme"] == "http"
    assert body["host"] == f"127.0.0.1:{server.port}"
    assert body["url"] == f"http://127.0.0.1:{server.port}/seen"


def test_chain_through_trusted_networks(server: RunningServer) -> None:
    body = get(server, {"X-Forwarded-For": "198.51.100.66, 203.0.113.9, 10.1.2.3, 2001:db8::5"})
    assert body["client"] == ["203.0.113.9", 0]
    body = get(
        server,
        [
            ("Forwarded", "for=198.51.100.66;proto=http"),
            ("Forwarded", 'for=203.0.113.9;proto=https, for="[2001:db8::5]";proto=http'),
        ],
    )
    assert (body["client"], body["scheme"]) == (["203.0.113.9", 0], "https")


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forwarded-For": "not-an-address", "X-Forwarded-Proto": "gopher", "X-Forwarded-Host": "a b"},
        {"Forwarded": 'for="unterminated;proto=https'},
        {"Forwarded": "for=1.2.3.4;for=5.6.7.8"},
        {"X-Forwarded-For": "1.2.3.4:99999, ,"},
    ],
)
def test_malformed_headers_are_ignored(server: RunningServer, headers: dict[str, str]) -> None:
    body = get(server, headers)
    assert (body["client_ip"], body["scheme"], body["host"]) == (TRUSTED_PEER, "http", f"127.0.0.1:{server.port}")


def ws_seen(server: RunningServer, headers: dict[str, str], peer: str) -> dict[str, Any]:
    url = server.url.replace("http://", "ws://") + "/ws/seen"
    with websockets.sync.client.connect(
        url, additional_headers=headers, source_address=(peer, 0), open_timeout=10
    ) as ws:
        seen: dict[str, Any] = json.loads(ws.recv(timeout=10))
        ws.send("hi")
        assert ws.recv(timeout=10) == "echo: hi"
    return seen


def test_websocket_behind_a_trusted_proxy(server: RunningServer) -> None:
    headers = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "example.com"}
    seen = ws_seen(server, headers, TRUSTED_PEER)
    assert (seen["client_ip"], seen["scheme"], seen["host"]) == ("203.0.113.7", "https", "example.com")
    seen = ws_seen(server, headers, UNTRUSTED_PEER)
    assert (seen["client_ip"], seen["scheme"], seen["host"]) == (UNTRUSTED_PEER, "http", f"127.0.0.1:{server.port}")


# -- `cello serve --forwarded-allow-ips` ----------------------------------------------------


@pytest.fixture(params=["httptools", "h11"])
def parser(request: pytest.FixtureRequest) -> Iterator[str]:
    yield request.param


def test_flag_star_trusts_every_peer(serve_app: Callable[..., RunningServer], parser: str) -> None:
    server = serve_app(APP, parser, "interpreted", "--forwarded-allow-ips", "*")
    body = get(server, {"X-Forwarded-For": "203.0.113.7"}, peer=UNTRUSTED_PEER)
    assert body["client_ip"] == "203.0.113.7"


def test_flag_overrides_the_app_setting(serve_app: Callable[..., RunningServer], parser: str) -> None:
    server = serve_app(APP, parser, "interpreted", "--forwarded-allow-ips", "127.0.0.2/32, 192.0.2.0/24")
    assert get(server, {"X-Forwarded-For": "203.0.113.7"}, peer=TRUSTED_PEER)["client_ip"] == TRUSTED_PEER
    assert get(server, {"X-Forwarded-For": "203.0.113.7"}, peer=UNTRUSTED_PEER)["client_ip"] == "203.0.113.7"


def test_flag_empty_trusts_nobody(serve_app: Callable[..., RunningServer], parser: str) -> None:
    server = serve_app(APP, parser, "interpreted", "--forwarded-allow-ips", "")
    assert get(server, {"X-Forwarded-For": "203.0.113.7"})["client_ip"] == TRUSTED_PEER
