"""The live tunable store: bad documents are rejected, listeners hear only real changes."""

from __future__ import annotations

import pytest

from services.kit.settings import Tunables
from services.upstream.config import parse_document
from tests.unit.services.upstream.support import store


def test_tunable_store_rejects_bad_documents_and_notifies() -> None:
    tunables = store()
    seen: list[float] = []
    tunables.subscribe(lambda t: seen.append(t.timeout_s))
    assert tunables.update({"timeout_s": 0.25}, "test")
    assert not tunables.update({"timeout_s": -1}, "test")
    assert not tunables.update({"timeout_s": 9, "deadline_s": 1}, "test")
    assert tunables.current.timeout_s == 0.25 and seen == [0.25]
    assert tunables.update({}, "test") and tunables.current.timeout_s == Tunables().timeout_s
    assert parse_document("timeout_s: 0.5") == {"timeout_s": 0.5}
    assert parse_document(b'{"retry_attempts": 2}') == {"retry_attempts": 2}
    with pytest.raises(ValueError):
        parse_document("- a list")
