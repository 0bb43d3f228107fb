"""app.enable_metrics(): Prometheus metrics scraped over the network and parsed with
prometheus-client's own parser, on every server variant, under `cello serve --workers 2`
(a scrape of any worker sums them all; a killed worker counts a restart) and TestClient."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.servers import RunningServer, start_server
from websockets.sync.client import connect as ws_connect

from cello import App, Request
from cello.testing import TestClient

APP = "tests/apps/metrics_app.py"
USERS = "/users/{id:int}"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def server(serve_app: Callable[..., RunningServer], variant: tuple[str, str]) -> RunningServer:
    return serve_app(APP, *variant)


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def scrape(client: httpx.Client | TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def requests(samples: Samples, route: str, method: str = "GET", status: str = "200") -> float:
    return value(samples, "cello_requests_total", route=route, method=method, status=status)


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


# -- over the network, on every variant ------------------------------------------------------


def test_requests_are_counted_per_route_template_method_and_status(client: httpx.Client) -> None:
    before = scrape(client)
    for _ in range(3):
        assert client.get("/users/1").status_code == 200
    for _ in range(2):
        assert client.get("/users/2").status_code == 200
    # A scanner's paths: none becomes a label value of its own.
    for path in ("/users/x", "/wp-admin/setup.php", "/.env"):
        assert client.get(path).status_code == 404
    assert client.post("/users/1").status_code == 405
    after = scrape(client)

    assert requests(after, USERS) - requests(before, USERS) == 5
    assert requests(after, "<unmatched>", status="404") - requests(before, "<unmatched>", status="404") == 3
    assert requests(after, "<unmatched>", "POST", "405") - requests(before, "<unmatched>", "POST", "405") == 1
    count = "cello_request_duration_seconds_count"
    labels = {"route": USERS, "method": "GET", "status": "200"}
    assert value(after, count, **labels) - value(before, count, **labels) == 5
    routes = {dict(labels).get("route") for _, labels in after}
    assert routes <= {None, USERS, "<unmatched>", "/metrics", "/slow", "/echo", "/events", "/ws", "/pid"}, routes


def test_the_latency_histogram_puts_a_slow_request_in_its_bucket(client: httpx.Client) -> None:
    labels = {"route": "/slow", "method": "GET", "status": "200"}
    before = scrape(client)
    assert client.get("/slow", params={"seconds": "0.3"}).text == "slow"
    after = scrape(client)

    def delta(name: str, **extra: str) -> float:
        return value(after, name, **labels, **extra) - value(before, name, **labels, **extra)

    # Buckets are cumulative: 0.3 s is above 0.1, within 1.0 and everything above.
    assert delta("cello_request_duration_seconds_bucket", le="0.1") == 0
    assert delta("cello_request_duration_seconds_bucket", le="1.0") == 1
    assert delta("cello_request_duration_seconds_bucket", le="+Inf") == 1
    assert delta("cello_request_duration_seconds_count") == 1
    # (asyncio may wake a timer up to a clock tick early.)
    assert 0.29 <= delta("cello_request_duration_seconds_sum") < 1.0


def test_in_flight_counts_a_running_request(server: RunningServer, client: httpx.Client) -> None:
    # The scrape itself is in flight while it renders the page.
    assert value(scrape(client), "cello_requests_in_flight") == 1
    done: list[int] = []

    def slow() -> None:
        with httpx.Client(base_url=server.url, timeout=10) as other:
            done.append(other.get("/slow", params={"seconds": "1.5"}).status_code)

    thread = threading.Thread(target=slow)
    thread.start()
    try:
        assert wait_for(lambda: value(scrape(client), "cello_requests_in_flight") == 2, timeout=1.4)
    finally:
        thread.join()
    assert done == [200]
    assert value(scrape(client), "cello_requests_in_flight") == 1


def test_open_sse_streams_go_up_and_back_down(server: RunningServer, client: httpx.Client) -> None:
    base = scrape(client)
    assert value(base, "cello_sse_streams_open") == 0
    sent = ("cello_response_body_bytes_total", {"route": "/events", "method": "GET"})
    with httpx.Client(base_url=server.url, timeout=10) as other, other.stream("GET", "/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        received = 0
        lines = stream.iter_lines()
        while received < 3:
            if next(lines).startswith("data: tick"):
                received += 1
        open_now = scrape(client)
        assert value(open_now, "cello_sse_streams_open") == 1
        # The events sent so far are counted as they go, not when the stream ends.
        assert value(open_now, sent[0], **sent[1]) - value(base, sent[0], **sent[1]) >= len(b"data: tick 0\n\n") * 3
    assert wait_for(lambda: value(scrape(client), "cello_sse_streams_open") == 0)
    assert requests(scrape(client), "/events") - requests(base, "/events") == 1


def test_open_websockets_go_up_and_back_down(server: RunningServer, client: httpx.Client) -> None:
    base = scrape(client)
    assert value(base, "cello_websockets_open") == 0
    with ws_connect(f"ws://127.0.0.1:{server.port}/ws", open_timeout=10) as ws:
        ws.send("hello")
        assert ws.recv(timeout=10) == "hello"
        assert value(scrape(client), "cello_websockets_open") == 1
    assert wait_for(lambda: value(scrape(client), "cello_websockets_open") == 0)
    # The handshake is a request like the others, answered 101.
    assert requests(scrape(client), "/ws", status="101") - requests(base, "/ws", status="101") == 1


def test_body_bytes_in_and_out(client: httpx.Client) -> None:
    labels = {"route": "/echo", "method": "POST"}
    before = scrape(client)
    body = os.urandom(1000)
    assert client.post("/echo", content=body).content == body
    assert client.post("/echo", content=b"").content == b""
    after = scrape(client)
    received = "cello_request_body_bytes_total"
    sent = "cello_response_body_bytes_total"
    assert value(after, received, **labels) - value(before, received, **labels) == 1000
    assert value(after, sent, **labels) - value(before, sent, **labels) == 1000
    assert requests(after, "/echo", "POST") - requests(before, "/echo", "POST") == 2


def test_bytes_counted_are_the_compressed_bytes_sent(client: httpx.Client) -> None:
    labels = {"route": "/big", "method": "GET"}
    sent = "cello_response_body_bytes_total"
    before = scrape(client)
    response = client.get("/big", headers={"accept-encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.text == "a" * 5000
    on_the_wire = int(response.headers["content-length"])
    assert on_the_wire < 5000
    assert value(scrape(client), sent, **labels) - value(before, sent, **labels) == on_the_wire


def test_an_app_without_metrics_has_no_metrics_route(
    serve_app: Callable[..., RunningServer], variant: tuple[str, str]
) -> None:
    server = serve_app("tests/apps/basic.py", *variant)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get("/metrics").status_code == 404
        assert client.get("/").status_code == 200


# -- several workers ---------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_workers_share_their_metrics_and_count_restarts(tmp_path: Path) -> None:
    # The server's private directory is made under TMPDIR: the test sees it come and go.
    server = start_server(APP, "httptools", "interpreted", "--workers", "2", env={"TMPDIR": str(tmp_path)})
    try:
        assert len(list(tmp_path.glob("cello-metrics-*"))) == 1
        close = {"Connection": "close"}
        pids: set[int] = set()
        total = 40
        for i in range(total):
            # A new connection each time: the kernel spreads them over the workers.
            response = httpx.get(f"{server.url}/users/{i}", headers=close, timeout=10)
            assert response.status_code == 200
        for _ in range(20):
            pids.add(int(httpx.get(f"{server.url}/pid", headers=close, timeout=10).text))
        assert len(pids) == 2, "the connections all went to one worker"
        # Whichever worker answers the scrape, it reports every worker's requests.
        for _ in range(6):
            samples = parse(httpx.get(f"{server.url}/metrics", headers=close, timeout=10).text)
            assert requests(samples, USERS) == total
            assert requests(samples, "/pid") == 20
            assert value(samples, "cello_requests_in_flight") == 1
            assert value(samples, "cello_worker_restarts_total") == 0

        victim = min(pids)
        os.kill(victim, signal.SIGKILL)

        def replaced() -> bool:
            try:
                answer = httpx.get(f"{server.url}/pid", headers=close, timeout=10).text
            except httpx.TransportError:
                return False  # a connection the killed worker had accepted
            return int(answer) not in pids

        assert wait_for(replaced), "the killed worker was not replaced"
        for _ in range(6):
            samples = parse(httpx.get(f"{server.url}/metrics", headers=close, timeout=10).text)
            assert value(samples, "cello_worker_restarts_total") == 1
            # The dead worker's counts stay; its in-flight gauge left with it.
            assert requests(samples, USERS) == total
            assert value(samples, "cello_requests_in_flight") == 1
    finally:
        assert server.stop() == 0, server.output()
    assert list(tmp_path.glob("cello-metrics-*")) == []


# -- in process --------------------------------------------------------------------------------


def test_testclient_and_another_path() -> None:
    app = App()
    app.enable_metrics(path="/internal/metrics")

    @app.get("/hello")
    def hello(request: Request) -> str:
        return "hello"

    with TestClient(app) as client:
        assert client.get("/hello").text == "hello"
        assert client.get("/metrics").status_code == 404
        samples = scrape_at(client, "/internal/metrics")
    assert requests(samples, "/hello") == 1
    assert value(samples, "cello_response_body_bytes_total", route="/hello", method="GET") == len("hello")
    assert requests(samples, "<unmatched>", status="404") == 1


def scrape_at(client: TestClient, path: str) -> Samples:
    response = client.get(path)
    assert response.status_code == 200
    return parse(response.text)


def test_without_metrics_nothing_is_installed() -> None:
    app = App()

    @app.get("/")
    def index(request: Request) -> str:
        return "ok"

    assert app.metrics is None
    assert app.scope.before == [] and app.scope.after == []
    with TestClient(app) as client:
        assert client.get("/").text == "ok"
        assert client.get("/metrics").status_code == 404


def test_enable_metrics_twice_is_refused() -> None:
    app = App()
    app.enable_metrics()
    with pytest.raises(RuntimeError, match="called already"):
        app.enable_metrics()


def test_unknown_methods_share_one_label() -> None:
    app = App()
    app.enable_metrics()

    @app.get("/")
    def index(request: Request) -> str:
        return "ok"

    with TestClient(app) as client:
        for method in ("FOO", "BAR", "BAZ"):
            assert client.request(method, "/").status_code == 405
        samples = scrape(client)
    assert requests(samples, "/", "OTHER", "405") == 0  # a 405 matched no route of that method
    assert requests(samples, "<unmatched>", "OTHER", "405") == 3
    methods = {dict(labels).get("method") for name, labels in samples if name == "cello_requests_total"}
    assert methods == {"OTHER"}
