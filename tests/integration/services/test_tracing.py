"""One order, one trace: W3C trace context crosses gateway -> orders -> inventory, exported over OTLP."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from services.kit.net import free_port
from tests.support.stack import order, running_stack, wait_for


class Collector:
    """A real OTLP/HTTP receiver: decodes the protobuf export requests the services send."""

    def __init__(self) -> None:
        self.spans: list[dict[str, object]] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                export = ExportTraceServiceRequest()
                export.ParseFromString(body)
                for resource_spans in export.resource_spans:
                    attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                    for scope in resource_spans.scope_spans:
                        for span in scope.spans:
                            span_attrs = {a.key: a.value for a in span.attributes}
                            with collector.lock:
                                collector.spans.append(
                                    {
                                        "service": attrs.get("service.name"),
                                        "trace_id": span.trace_id.hex(),
                                        "name": span.name,
                                        "attrs": span_attrs,
                                    }
                                )
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.22.9", free_port("127.0.22.9")), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    c.thread.start()
    yield c
    c.server.shutdown()


@pytest.mark.parametrize("style", ["platform", "hybrid-vip"])
def test_one_trace_spans_all_three_services(collector: Collector, style: str) -> None:
    otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100", "STYLE": style}
    with running_stack() as stack, httpx.Client(timeout=10) as client:
        inventory = stack.start("inventory", "127.0.22.1", otel)
        orders = stack.start("orders", "127.0.22.2", {**otel, "INVENTORY_URL": inventory.url})
        gateway = stack.start(
            "gateway", "127.0.22.3", {**otel, "INVENTORY_URL": inventory.url, "ORDERS_URL": orders.url}
        )
        response = order(client, gateway.url, f"trace-order-{style}")
        assert response.status_code == 201

        def trace_of_order() -> set[object]:
            with collector.lock:
                roots = [
                    s for s in collector.spans if s["service"] == "gateway" and "POST /api/orders" in str(s["name"])
                ]
                if not roots:
                    return set()
                trace_id = roots[0]["trace_id"]
                return {s["service"] for s in collector.spans if s["trace_id"] == trace_id}

        services = wait_for(
            lambda: trace_of_order() >= {"gateway", "orders", "inventory"} and trace_of_order(),
            timeout=10,
            what="spans from all three services",
        )
        assert services == {"gateway", "orders", "inventory"}
        with collector.lock:
            client_spans = [s for s in collector.spans if "upstream.instance" in s["attrs"]]  # type: ignore[operator]
        assert client_spans, "upstream-call spans carry the chosen instance"
        attrs = client_spans[0]["attrs"]
        assert attrs["upstream.attempt"].int_value == 1  # type: ignore[index]
        expected_state = "closed" if style == "hybrid-vip" else "none"
        assert any(
            s["attrs"]["upstream.breaker_state"].string_value == expected_state  # type: ignore[index]
            for s in client_spans
        )

        # A failing call is logged with the trace id of the request, so logs and traces join up.
        inventory.admin("PUT", {"error_rate": 1.0})
        assert client.get(gateway.url + "/api/products/p-001").status_code == 502
        line = wait_for(
            lambda: [
                json.loads(x) for x in gateway.log().splitlines() if '"upstream": "inventory"' in x and "trace_id" in x
            ],
            timeout=5,
            what="log line",
        )[0]
        wait_for(
            lambda: any(s["trace_id"] == line["trace_id"] for s in list(collector.spans)),
            timeout=5,
            what="the logged trace id among exported spans",
        )
