"""The innermost step: one HTTP exchange over aiohttp, with connection reuse chosen explicitly.

Keep-alive matters to the comparison: under connection-level balancing (kube-proxy) a reused
connection keeps going to the same replica, so `keepalive` is a tunable the benchmark reports.
"""

from __future__ import annotations

from collections.abc import Awaitable

import aiohttp
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from services.kit.metrics import UPSTREAM_REQUESTS
from services.kit.telemetry import SPANS
from services.upstream.call import Cause, UpstreamError, UpstreamRequest, UpstreamResponse

_tracer = trace.get_tracer("services.upstream")


def make_session(keepalive: bool, limit: int = 256) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=limit,
        limit_per_host=0,
        force_close=not keepalive,
        keepalive_timeout=30 if keepalive else None,
        ttl_dns_cache=10,
        enable_cleanup_closed=False,
    )
    return aiohttp.ClientSession(connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",))


class AiohttpTransport:
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self._counters: dict[tuple[str, str, int], list[int]] = {}
        self._timeouts: dict[float | None, aiohttp.ClientTimeout] = {}

    def _timeout(self, seconds: float | None) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(total=seconds)
            if len(self._timeouts) < 64:  # deadlines make many distinct values; keep the common ones
                self._timeouts[seconds] = timeout
        return timeout

    def _count(self, upstream: str, instance: str, status: int) -> None:
        key = (upstream, instance, status)
        cell = self._counters.get(key)
        if cell is None:
            cell = self._counters[key] = UPSTREAM_REQUESTS.cell(upstream, instance, str(status))
        cell[0] += 1

    def __call__(self, request: UpstreamRequest) -> Awaitable[UpstreamResponse]:
        """A client span only when spans leave the process (`SPANS.exported`): unexported, it could never be
        seen and building it cost about half of the stack's CPU per hop. The trace context propagates either way
        (the caller's span then parents the upstream's)."""
        if SPANS.exported:
            return self._traced(request)
        return self._exchange(request, trace.INVALID_SPAN)

    async def _traced(self, request: UpstreamRequest) -> UpstreamResponse:
        assert request.instance is not None
        attributes: dict[str, str | int] = {
            "peer.service": request.upstream,
            "upstream.instance": request.instance.id,
            "upstream.attempt": request.attempt or 1,
            "upstream.breaker_state": request.breaker_state,
        }
        with _tracer.start_as_current_span(
            f"{request.method} {request.upstream}", kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            return await self._exchange(request, span)

    async def _exchange(self, request: UpstreamRequest, span: trace.Span) -> UpstreamResponse:
        assert request.instance is not None
        instance = request.instance
        headers = dict(request.headers)
        propagate.inject(headers)
        try:
            async with self.session.request(
                request.method,
                instance.base_url + request.path,
                json=request.json_body,
                headers=headers,
                timeout=self._timeout(request.timeout_s),
            ) as resp:
                body = await resp.read()
                if span is not trace.INVALID_SPAN:
                    span.set_attribute("http.response.status_code", resp.status)
                    if resp.status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                self._count(request.upstream, instance.id, resp.status)
                return UpstreamResponse(resp.status, body, resp.headers, instance.id)
        except TimeoutError as exc:
            raise self._fail(span, request, request.timeout_cause, exc, sent=True) from None
        except aiohttp.ClientConnectorError as exc:
            raise self._fail(span, request, Cause.CONNECT_ERROR, exc, sent=False) from None
        except (
            aiohttp.ServerDisconnectedError,
            aiohttp.ClientOSError,
            aiohttp.ClientPayloadError,
        ) as exc:
            raise self._fail(span, request, Cause.CONNECTION_RESET, exc, sent=True) from None
        except aiohttp.ClientError as exc:
            raise self._fail(span, request, Cause.UPSTREAM_ERROR, exc, sent=True) from None

    @staticmethod
    def _fail(span: trace.Span, request: UpstreamRequest, cause: Cause, exc: Exception, *, sent: bool) -> UpstreamError:
        instance = request.instance.id if request.instance else ""
        span.set_status(Status(StatusCode.ERROR, cause.value))
        UPSTREAM_REQUESTS.cell(request.upstream, instance, cause.value)[0] += 1
        return UpstreamError(request.upstream, cause, f"{type(exc).__name__}: {exc}", sent=sent, instance=instance)
