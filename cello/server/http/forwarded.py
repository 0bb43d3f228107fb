"""Requests that came through a proxy: the client's address, scheme and host, as the proxy says.

A proxy in front of the server (nginx, a load balancer) is the server's peer: without help every
request would seem to come from the proxy, over plain HTTP. The proxy says who its client was
in ``Forwarded`` (RFC 7239) or in ``X-Forwarded-For``/``-Proto``/``-Host``; those headers are
believed only when the peer is listed in ``forwarded_allow_ips`` (addresses and networks, or
``*``), since any client can send them. ``TrustedProxies.apply`` rewrites ``request.client``,
``request.scheme`` and ``request.host``, and sets ``request.via_trusted_proxy`` (what else such a
peer says may be believed too: ``X-Request-ID``); nothing else of the request changes
(``request.headers`` still shows what arrived).

The rules:

* ``Forwarded``, when the request has one, is the only header read (the X- headers are then
  ignored, whatever they say); otherwise ``X-Forwarded-For`` and the two others.
* A chain of proxies appends one entry each, so the rightmost entries were written by proxies
  closest to the server, and the leftmost by whoever sent the request first, possibly a client
  lying. The client is the rightmost entry that is not itself a trusted proxy (walking from the
  right, trusted addresses are skipped); when every entry is trusted, the leftmost one.
* The scheme and host come with the client chosen: from the same ``Forwarded`` element; for the
  X- headers, from the same position when ``X-Forwarded-Proto`` (``-Host``) has as many values as
  ``X-Forwarded-For``, else from its rightmost value (a proxy that sets a single value).
* ``for=unknown`` makes ``request.client`` None; an obfuscated identifier (``for=_hidden``)
  becomes the client's host as is (port 0 without one, or an obfuscated port).
* What cannot be read is not believed: a ``Forwarded`` header that does not parse, or a chosen
  entry that is neither an address nor one of the forms above, leaves the request as it arrived;
  a scheme other than http(s)/ws(s), or an invalid host, leaves that one value unchanged.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, Union

from cello.server.http.head import valid_host

if TYPE_CHECKING:
    from cello.request import Request

_Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
_Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

# RFC 7239 section 6: an obfuscated node name or port.
_OBFUSCATED: Final = re.compile(r"_[A-Za-z0-9._-]+")
_TOKEN_CHARS: Final = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_SCHEMES: Final = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


class _Node:
    """One client as a proxy names it: an address or identifier (``host`` None: "unknown")."""

    __slots__ = ("host", "port", "address")

    def __init__(self, host: str | None, port: int, address: _Address | None) -> None:
        self.host = host
        self.port = port
        self.address = address


class TrustedProxies:
    """The peers whose proxy headers are believed (``forwarded_allow_ips``)."""

    def __init__(self, entries: str | Sequence[str]) -> None:
        if isinstance(entries, str):
            entries = entries.split(",")
        self.everyone = False
        self.networks: list[_Network] = []
        # Single addresses as text, the common case: a peer's address is compared as given first.
        self._exact: set[str] = set()
        for entry in entries:
            text = str(entry).strip()
            if not text:
                continue
            if text == "*":
                self.everyone = True
                continue
            try:
                network = ipaddress.ip_network(text)
            except ValueError:
                raise ValueError(f"forwarded_allow_ips: {_not_a_network(text)}") from None
            self.networks.append(network)
            if network.num_addresses == 1:
                self._exact.add(str(network.network_address))

    @classmethod
    def parse(cls, entries: str | Sequence[str] | None) -> TrustedProxies | None:
        """The trusted proxies, or None when there are none (ValueError for an invalid entry)."""
        if not entries:
            return None
        proxies = cls(entries)
        return proxies if proxies.everyone or proxies.networks else None

    def __repr__(self) -> str:
        listed = ["*"] if self.everyone else [str(network) for network in self.networks]
        return f"TrustedProxies({', '.join(listed)})"

    def trusts(self, host: str | None) -> bool:
        """Whether a peer at ``host`` (an address as text; None: not known) is a trusted proxy."""
        if self.everyone:
            return True
        if host is None:
            return False
        if host in self._exact:
            return True
        address = _parse_address(host)
        return address is not None and self._contains(address)

    def _contains(self, address: _Address) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def _trusted_node(self, node: _Node | None) -> bool:
        return node is not None and node.address is not None and (self.everyone or self._contains(node.address))

    def apply_if_trusted(self, request: Request) -> None:
        """``apply`` when the request's peer is trusted (the ASGI adapter, per request)."""
        client = request.client
        if self.trusts(client[0] if client is not None else None):
            self.apply(request)

    def apply(self, request: Request) -> None:
        """Rewrite ``request.client``, ``scheme`` and ``host`` from the proxy headers of a
        request whose peer is trusted (the server decides that once per connection)."""
        request.via_trusted_proxy = True
        headers = request.headers
        forwarded = headers.get_all("forwarded")
        if forwarded:
            elements = parse_forwarded(", ".join(forwarded))
            if not elements:
                return
            fors = [element.get("for") for element in elements]
            index = self._client_index(fors)
            if index < 0:
                return
            element = elements[index]
            _set_client(request, fors[index])
            _set_scheme(request, element.get("proto"))
            _set_host(request, element.get("host"))
            return
        chain = _split(headers.get_all("x-forwarded-for"))
        index = len(chain) - 1
        if chain:
            index = self._client_index(chain)
            if index < 0:
                return
            _set_client(request, chain[index])
        _set_scheme(request, _same_position(_split(headers.get_all("x-forwarded-proto")), index, len(chain)))
        _set_host(request, _same_position(_split(headers.get_all("x-forwarded-host")), index, len(chain)))

    def _client_index(self, nodes: list[str | None]) -> int:
        """The position of the client in a chain of nodes (see the module's rules); -1 when
        the entry found there cannot be read."""
        index = len(nodes) - 1
        while index > 0:
            text = nodes[index]
            if text is None or not self._trusted_node(parse_node(text)):
                break
            index -= 1
        text = nodes[index]
        if text is not None and parse_node(text) is None:
            return -1
        return index


def _not_a_network(text: str) -> str:
    try:
        loose = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return f"{text!r} is not an IP address or network (like 127.0.0.1, 10.0.0.0/8 or ::1; or * for every peer)"
    return f"{text!r} has bits set after the prefix: the network is {loose}"


def _split(values: list[str]) -> list[str | None]:
    return [part.strip() for value in values for part in value.split(",")]


def _same_position(values: list[str | None], index: int, length: int) -> str | None:
    if not values:
        return None
    return values[index] if len(values) == length and index >= 0 else values[-1]


def _set_client(request: Request, text: str | None) -> None:
    if text is None:
        return  # a Forwarded element without for=: the peer stays the client
    node = parse_node(text)
    if node is None:
        return
    request.client = None if node.host is None else (node.host, node.port)


def _set_scheme(request: Request, text: str | None) -> None:
    if text is not None:
        scheme = _SCHEMES.get(text.strip().lower())
        if scheme is not None:
            request.scheme = scheme


def _set_host(request: Request, text: str | None) -> None:
    if text:
        host = text.strip()
        if host and host.isascii() and valid_host(host.encode("ascii")):
            request.host = host


def _parse_address(text: str) -> _Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def parse_node(text: str) -> _Node | None:
    """A node of ``Forwarded: for=`` or an ``X-Forwarded-For`` entry: an IPv4 address, an IPv6
    address (bracketed when a port follows), ``unknown`` or an obfuscated identifier, each with an
    optional port; None when it is none of these."""
    text = text.strip()
    port_text = ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                return None
            port_text = rest[1:]
        address = _parse_address(host)
        if not isinstance(address, ipaddress.IPv6Address):
            return None
    elif text.count(":") > 1:
        host = text  # IPv6 without brackets, as X-Forwarded-For often has it: no port
        address = _parse_address(host)
        if address is None:
            return None
    else:
        host, colon, port_text = text.partition(":")
        if colon and not port_text:
            return None
        address = None
        if host.lower() == "unknown":
            host = ""
        elif _OBFUSCATED.fullmatch(host) is None:
            address = _parse_address(host)
            if not isinstance(address, ipaddress.IPv4Address):
                return None
    port = 0
    if port_text:
        if port_text.isascii() and port_text.isdigit() and len(port_text) <= 5 and int(port_text) <= 65535:
            port = int(port_text)
        elif _OBFUSCATED.fullmatch(port_text) is None:
            return None
    if address is not None:
        return _Node(str(address), port, address)
    return _Node(host or None, port, None)


def parse_forwarded(text: str) -> list[dict[str, str]] | None:
    """The elements of a ``Forwarded`` field value (RFC 7239 section 4), each a dict of its
    pairs with lower-case names and unquoted values; None when the value does not parse
    (an unterminated quote, a pair without ``=``, a parameter twice in one element)."""
    elements: list[dict[str, str]] = []
    element: dict[str, str] = {}
    i = 0
    n = len(text)
    while True:
        i = _skip_space(text, i)
        if i < n and text[i] not in ",;":
            start = i
            while i < n and text[i] in _TOKEN_CHARS:
                i += 1
            name = text[start:i].lower()
            if not name or i >= n or text[i] != "=":
                return None
            i += 1
            if i < n and text[i] == '"':
                quoted = _quoted(text, i)
                if quoted is None:
                    return None
                value, i = quoted
            else:
                start = i
                while i < n and text[i] in _TOKEN_CHARS:
                    i += 1
                value = text[start:i]
                if not value:
                    return None
            if name in element:
                return None
            element[name] = value
            i = _skip_space(text, i)
        if i >= n:
            if element:
                elements.append(element)
            return elements
        separator = text[i]
        i += 1
        if separator == ",":
            if element:  # empty list elements are allowed (RFC 9110 5.6.1)
                elements.append(element)
            element = {}
        elif separator != ";":
            return None


def _skip_space(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in " \t":
        i += 1
    return i


def _quoted(text: str, i: int) -> tuple[str, int] | None:
    """The value of the quoted-string starting at ``text[i]`` and the index after it."""
    out: list[str] = []
    i += 1
    n = len(text)
    while i < n:
        char = text[i]
        if char == '"':
            return "".join(out), i + 1
        if char == "\\":
            i += 1
            if i >= n:
                return None
            char = text[i]
        elif char < " " and char != "\t" or char == "\x7f":
            return None
        out.append(char)
        i += 1
    return None
