"""Coverage-guided fuzzing of the request parsing path with atheris (not run by pytest or CI).

Each input picks limits and split points, then feeds the same bytes to both parser adapters
(httptools and h11) through the head validator, as the server does. It fails on:
an exception escaping an adapter; events out of order (head, body*, end; nothing after an
error); body bytes beyond what the head declared; the two adapters disagreeing about input
that both accept without error.

    pip install atheris
    python tests/fuzz/fuzz_parsers.py -max_total_time=600 tests/fuzz/corpus/

See tests/fuzz/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import atheris  # type: ignore[import-untyped]  # noqa: E402

with atheris.instrument_imports():
    from cello.server.config import ServerConfig
    from cello.server.http.head import HeadValidator
    from cello.server.http.parsers import create_parser


class Checker:
    """A ParserEvents sink that checks the order of events while recording them."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.state = "idle"  # idle -> head -> (body ->) idle; error/upgrade are final
        self.declared = -1
        self.received = 0

    def on_head(
        self, method: str, target: bytes, version: str, headers: list[tuple[bytes, bytes]], head: HeadValidator
    ) -> None:
        assert self.state == "idle", f"head while {self.state}"
        assert isinstance(method, str) and method, method
        assert version in ("1.0", "1.1"), version
        self.state = "head"
        self.declared = -1 if head.chunked else head.content_length
        self.received = 0
        self.events.append(("head", method, bytes(target), version, [(bytes(n), bytes(v)) for n, v in headers]))

    def on_body(self, data: bytes) -> None:
        assert self.state == "head", f"body while {self.state}"
        self.received += len(data)
        assert self.declared < 0 or self.received <= self.declared, "more body than declared"
        if self.events and self.events[-1][0] == "body":
            self.events[-1] = ("body", self.events[-1][1] + bytes(data))
        else:
            self.events.append(("body", bytes(data)))

    def on_end(self) -> None:
        assert self.state == "head", f"end while {self.state}"
        assert self.declared < 0 or self.received == self.declared, "body shorter than declared"
        self.state = "idle"
        self.events.append(("end",))

    def on_error(self, status: int, reason: str) -> None:
        assert self.state not in ("error", "upgrade"), f"error after {self.state}"
        assert 400 <= status <= 599, status
        self.state = "error"
        self.events.append(("error", status))

    def on_upgrade(self, data: bytes) -> None:
        assert self.state == "idle", f"upgrade while {self.state}"
        self.state = "upgrade"


def run(http: str, data: bytes, cuts: list[int], config: ServerConfig) -> Checker:
    checker = Checker()
    parser = create_parser(http, checker, config)
    start = 0
    for cut in sorted(cuts) + [len(data)]:
        if cut > start:
            parser.feed(data[start:cut])
            start = cut
    return checker


def test_one_input(raw: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(raw)
    tight = fdp.ConsumeBool()
    cut_count = fdp.ConsumeIntInRange(0, 8)
    cuts = [fdp.ConsumeIntInRange(0, 4096) for _ in range(cut_count)]
    data = fdp.ConsumeBytes(fdp.remaining_bytes())
    limits: dict[str, Any] = {"max_request_line": 64, "max_header_size": 128, "max_header_count": 4} if tight else {}
    results = [run(http, data, cuts, ServerConfig(http=http, **limits)) for http in ("httptools", "h11")]
    accepted = [r for r in results if r.state in ("idle", "head")]
    if len(accepted) == 2:
        # Only whole messages are compared: an unfinished one may be reported differently far.
        ends = [max((i for i, e in enumerate(r.events) if e[0] == "end"), default=-1) for r in results]
        first, second = (r.events[: end + 1] for r, end in zip(results, ends))
        assert first == second, f"the adapters disagree:\n{first}\n{second}"


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
