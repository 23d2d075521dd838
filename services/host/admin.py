"""The admin API's one door, and the reset of the replica's upstream clients behind it.

Every admin route (the faults in `faults`, the client reset here) is mounted on a router from
`admin_router`, so each checks the same bearer token and documents the same 401 with its challenge. The
admin API exists only when an admin token is configured; without one the routes are never mounted and
answer 404 like any unknown path.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from services.kit.problems import Problem
from services.upstream import UpstreamClient

_BEARER = HTTPBearer(auto_error=False, description="the replica's ADMIN_TOKEN")
#: The 401 of every admin route, with the challenge RFC 9110 section 15.5.2 requires.
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="admin"'}
_UNAUTHORIZED = {
    "description": "no valid admin bearer token",
    "headers": {
        "WWW-Authenticate": {"description": "how to authenticate", "required": True, "schema": {"type": "string"}}
    },
}


def admin_router(admin_token: str) -> APIRouter:
    """A router under /admin whose every route needs `admin_token` as its bearer token (401 otherwise)."""

    def authorize(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]) -> None:
        token = credentials.credentials if credentials is not None else ""
        if not token or not hmac.compare_digest(token.encode(), admin_token.encode()):
            raise Problem(401, "Unauthorized", "a valid admin bearer token is required", headers=_CHALLENGE)

    return APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(authorize)], responses={401: _UNAUTHORIZED})


class ClientReset(BaseModel):
    """What a client reset reached."""

    model_config = ConfigDict(extra="forbid")

    upstreams: list[str] = Field(
        description="the upstreams whose client now holds a fresh process's per-endpoint state (none on inventory)"
    )


def install_client_reset(app: FastAPI, clients: Mapping[str, UpstreamClient], admin_token: str) -> None:
    """`clients` is read on each call: the app fills it at start-up, after the routes are mounted."""
    if not admin_token:
        return
    router = admin_router(admin_token)

    @router.delete("/client-state")
    async def reset_client_state() -> ClientReset:
        """Every upstream client back to what a fresh process holds: every breaker closed, the balancer's
        latency estimates, loads and ejections forgotten, the retry budget's window cleared. The endpoint
        lists (discovery) and the live tunables stay as they are.

        The benchmark calls it between runs: after a fault, a breaker's half-open trial otherwise waits until
        the balancer's stale estimate of that replica decays, and that wait measures nothing.
        """
        for client in clients.values():
            client.reset()
        return ClientReset(upstreams=sorted(clients))

    app.include_router(router)
