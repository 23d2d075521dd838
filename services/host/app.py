"""The app factory every service uses: health, metrics, faults, problems, telemetry and upstream clients.

A service module only adds its routes and names its upstreams; what differs between the styles is read
from the style's row in `services.upstream.styles.STYLES` (what to start) and built by `build_client`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services import __version__
from services.host.admin import install_client_reset
from services.host.contract import install_contract
from services.host.faults import FaultState, fault_gate, install_faults
from services.host.registration import Registration
from services.host.relay import install_upstream_errors
from services.kit.background import cancel_and_wait
from services.kit.lifecycle import Lifecycle
from services.kit.metrics import MetricsMiddleware, metrics_endpoint
from services.kit.problems import install_problem_handlers, problem_response
from services.kit.settings import Settings
from services.kit.telemetry import configure_tracing, instrument_app
from services.upstream import (
    STYLES,
    ConfigSource,
    FileWatcher,
    KvWatcher,
    TunableStore,
    UpstreamClient,
    build_client,
    make_consul,
    make_session,
)

log = logging.getLogger("services.app")


@dataclass
class AppContext:
    """Everything a route handler may need, built once per process."""

    settings: Settings
    lifecycle: Lifecycle
    store: TunableStore
    faults: FaultState
    upstream_urls: dict[str, str]
    clients: dict[str, UpstreamClient] = field(default_factory=dict)
    registration: Registration | None = None
    drain_task: asyncio.Task[None] | None = None
    on_drained: Callable[[], None] | None = None

    def client(self, name: str) -> UpstreamClient:
        return self.clients[name]

    def begin_drain(self) -> None:
        """SIGTERM: stop being ready (and leave Consul) first, keep serving for drain_s, then exit."""
        if self.drain_task is None:
            self.drain_task = asyncio.get_running_loop().create_task(self._drain(), name="drain")

    async def _drain(self) -> None:
        self.lifecycle.draining = True
        log.info("draining for %.1fs", self.settings.drain_s, extra={"event": "draining"})
        if self.registration is not None:
            await self.registration.deregister()
        await asyncio.sleep(self.settings.drain_s)
        if self.on_drained is not None:
            self.on_drained()


class EdgeMiddleware:
    """Stamps X-Instance-Id on every response and refuses bodies over the limit with 413."""

    def __init__(self, app: ASGIApp, instance_id: str, max_body: int) -> None:
        self.app = app
        self.instance_header = (b"x-instance-id", instance_id.encode())
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), self.instance_header]
            await send(message)

        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_body):
                await self._too_large(scope, receive, send_wrapper)
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send_wrapper)
        except _BodyTooLarge:
            await self._too_large(scope, receive, send_wrapper)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"request body exceeds {self.max_body} bytes"
        await problem_response(413, "Payload too large", detail, instance=scope["path"])(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


class Alive(BaseModel):
    status: Literal["alive"] = "alive"


class Ready(BaseModel):
    status: Literal["ready"] = "ready"
    instance: str = Field(description="this replica's instance id")


def _health_router(context: AppContext) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/health/live")
    async def live() -> Alive:
        return Alive()

    not_ready = {"description": "not ready yet, or draining: `phase` and `detail` say what it waits for"}

    @router.get("/health/ready", response_model=None, responses={200: {"model": Ready}, 503: not_ready})
    async def ready(request: Request) -> Response:
        if context.lifecycle.ready:
            return JSONResponse(Ready(instance=context.settings.instance_id).model_dump())
        return problem_response(
            503,
            "Not ready",
            context.lifecycle.reason(),
            instance=request.url.path,
            phase=context.lifecycle.phase,
        )

    return router


def create_app(
    settings: Settings,
    upstream_urls: dict[str, str],
    routes: Callable[[AppContext], APIRouter],
    description: str,
) -> FastAPI:
    """`upstream_urls` maps each upstream name to its Service URL (used by platform and hybrid)."""
    provider = configure_tracing(settings.service_name, settings.instance_id)
    lifecycle = Lifecycle(settings.warmup_s)
    store = TunableStore(settings.tunables)
    context = AppContext(settings, lifecycle, store, FaultState(lifecycle), upstream_urls)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            await _start(context, stack)
            yield
        provider.shutdown()

    app = FastAPI(
        title=settings.service_name,
        version=__version__,
        description=description,
        lifespan=lifespan,
        dependencies=[Depends(fault_gate)],
    )
    app.state.context = context
    install_problem_handlers(app)
    install_upstream_errors(app)
    install_contract(app)
    app.include_router(_health_router(context))
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    app.include_router(routes(context))
    install_faults(app, context.faults, settings.admin_token)
    install_client_reset(app, context.clients, settings.admin_token)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(EdgeMiddleware, instance_id=settings.instance_id, max_body=settings.max_body_bytes)
    instrument_app(app, provider)
    return app


async def _start(context: AppContext, stack: contextlib.AsyncExitStack) -> None:
    settings = context.settings
    spec = STYLES[settings.style]
    consul_client: Any = None
    if spec.needs_consul:
        consul_client = make_consul(settings)
        stack.push_async_callback(_close_consul, consul_client)
        # Which Consul answered is logged once registration succeeds: start-up never waits for Consul.
        log.info("style=%s, consul at %s", settings.style, settings.consul_http_addr)
    if spec.config is ConfigSource.CONSUL_KV:
        kv = KvWatcher(consul_client, f"config/{settings.service_name}/data", context.store)
        kv.start()
        stack.push_async_callback(kv.stop)
    elif settings.config_file:
        watcher = FileWatcher(settings.config_file, context.store)
        watcher.start()
        stack.push_async_callback(watcher.stop)
    # After the file is read, so a mounted `keepalive` applies; it is read once, at start.
    session = make_session(context.store.current.keepalive)
    stack.push_async_callback(session.close)
    for name, url in context.upstream_urls.items():
        built = build_client(name, settings.style, context.store, session, service_url=url, consul_client=consul_client)
        await built.discovery.start()
        stack.push_async_callback(built.discovery.stop)
        _gate(context, stack, f"discovery:{name}", f"{name} endpoints from {spec.discovery}", built.discovery.ready)
        context.clients[name] = built.client
        log.info("upstream %s: %s", name, built.client.describe, extra={"upstream": name})
    if spec.registers:
        context.registration = Registration(consul_client, settings)
        context.registration.start()
        stack.push_async_callback(context.registration.deregister)
        _gate(context, stack, "registration", "registration in consul", context.registration.registered)
    log.info(
        "%s %s ready after %.1fs warm-up (style=%s, discovery=%s, config=%s)",
        settings.service_name,
        settings.instance_id,
        settings.warmup_s,
        settings.style,
        spec.discovery,
        spec.config,
        extra={"style": settings.style.value, "event": "started"},
    )


def _gate(context: AppContext, stack: contextlib.AsyncExitStack, key: str, reason: str, event: asyncio.Event) -> None:
    """Not ready until `event` is set: the control plane's first answer, never a blocked start-up."""
    if event.is_set():
        return
    context.lifecycle.wait_for(key, reason)

    async def release() -> None:
        await event.wait()
        context.lifecycle.satisfied(key)

    task = asyncio.get_running_loop().create_task(release(), name=f"gate-{key}")
    stack.push_async_callback(cancel_and_wait, task)


async def _close_consul(client: Any) -> None:
    close = getattr(client, "close", None)
    if close is not None:
        result = close()
        if asyncio.iscoroutine(result):
            await result
