"""What handlers call: `await client.request(...)`, whatever the style put in the chain."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from services.kit.metrics import UPSTREAM_DURATION
from services.upstream.call import Handler, Policy, Resettable, UpstreamRequest, UpstreamResponse
from services.upstream.config import TunableStore


class UpstreamClient:
    def __init__(
        self, name: str, handler: Handler, store: TunableStore, describe: str, policies: Sequence[Policy] = ()
    ) -> None:
        """`policies`: the steps `handler` chains, kept so `reset` reaches those holding per-endpoint state."""
        self.name = name
        self.handler = handler
        self.store = store
        self.describe = describe
        self.policies = tuple(policies)
        self._duration = UPSTREAM_DURATION.labels(name)

    def reset(self) -> None:
        """Every policy's per-endpoint state back to a fresh process's: breakers closed, the balancer's
        estimates and the retry budget's window forgotten. Discovery and the tunables stay as they are.

        Synchronous, so no call of this event loop sees a half-reset stack.
        """
        for policy in self.policies:
            if isinstance(policy, Resettable):
                policy.reset()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> UpstreamResponse:
        """`idempotent` defaults to the HTTP method's semantics; writes opt in with an idempotency key."""
        if idempotent is None:
            idempotent = method in {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}
        start = time.monotonic()
        request = UpstreamRequest(
            upstream=self.name,
            method=method,
            path=path,
            json_body=json_body,
            headers=headers or {},
            idempotent=idempotent,
            deadline=start + self.store.current.deadline_s,
        )
        try:
            return await self.handler(request)
        finally:
            self._duration.observe(time.monotonic() - start)
