"""`python -m services <gateway|orders|inventory>`: one replica, configured by environment variables.

Bad configuration stops the process before it binds a port, with one line saying what is wrong.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from types import FrameType

import uvicorn
from pydantic import ValidationError

from services import SERVICES
from services.kit.logs import configure_logging


class DrainingServer(uvicorn.Server):
    """First SIGTERM/SIGINT drains (unready, deregister, keep serving drain_s); a second one exits now."""

    def __init__(self, config: uvicorn.Config, context: object) -> None:
        super().__init__(config)
        self.context = context
        self.loop: asyncio.AbstractEventLoop | None = None
        self._signalled = False

    async def startup(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self.loop = asyncio.get_running_loop()
        await super().startup(sockets)  # type: ignore[arg-type]

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._signalled or self.loop is None:
            super().handle_exit(sig, frame)
            return
        self._signalled = True
        context = self.context
        context.on_drained = lambda: setattr(self, "should_exit", True)  # type: ignore[attr-defined]
        self.loop.call_soon_threadsafe(context.begin_drain)  # type: ignore[attr-defined]


def config_error(message: str) -> None:
    print(f"config error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: list[str]) -> None:
    if len(argv) != 1 or argv[0] not in SERVICES:
        config_error(f"usage: python -m services <{'|'.join(SERVICES)}> (got {' '.join(argv) or 'nothing'})")
    module = importlib.import_module(f"services.{argv[0]}.app")
    try:
        settings = module.SETTINGS()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]).upper() or "settings"
        config_error(f"{where}: {first['msg']}")
    except ValueError as exc:
        config_error(str(exc))
    configure_logging(settings.service_name, settings.instance_id, settings.log_level)
    try:
        app = module.build_app(settings)
    except ValueError as exc:
        config_error(str(exc))
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=max(5, int(settings.drain_s) + 5),
        backlog=2048,
    )
    server = DrainingServer(config, app.state.context)
    server.run()


if __name__ == "__main__":
    main(sys.argv[1:])
