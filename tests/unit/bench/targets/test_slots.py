"""Concurrent benchmark runs get disjoint address blocks, and a dead run's slot is free again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.targets import slots
from bench.targets.factory import BLOCKS, VIP_BLOCKS


def test_concurrent_claims_get_disjoint_blocks_and_a_released_slot_is_reused(tmp_path: Path) -> None:
    first, second = slots.claim(tmp_path), slots.claim(tmp_path)
    assert (first.index, second.index) == (0, 1)
    assert first.block(VIP_BLOCKS["platform"]) == 132 and second.block(VIP_BLOCKS["platform"]) == 142
    ours = {first.block(b) for b in (*BLOCKS.values(), *VIP_BLOCKS.values())}
    theirs = {second.block(b) for b in (*BLOCKS.values(), *VIP_BLOCKS.values())}
    assert not ours & theirs
    first.release()
    assert slots.claim(tmp_path).index == 0
    second.release()


def test_every_slot_taken_is_refused_in_one_line(tmp_path: Path) -> None:
    held = [slots.claim(tmp_path) for _ in range(slots.SLOTS)]
    with pytest.raises(RuntimeError, match=r"^4 benchmark runs already hold every address slot"):
        slots.claim(tmp_path)
    for slot in held:
        slot.release()


def test_a_killed_holder_frees_its_slot(tmp_path: Path) -> None:
    code = (
        "from pathlib import Path; from bench.targets import slots; "
        f"slots.claim(Path({str(tmp_path)!r})); print(1, flush=True); input()"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "1"
        assert slots.claim(tmp_path).index == 1
    finally:
        holder.kill()
        holder.wait()
    assert slots.claim(tmp_path).index == 0


def test_every_shifted_block_stays_a_valid_octet_clear_of_the_test_blocks() -> None:
    used_by_tests = {5, 6, 7, 8, 9, 20, 21, 22, 23, 24, 26, 27, 40, 90, 107, 126}
    for index in range(slots.SLOTS):
        slot = slots.AddressSlot(index, None)
        for base in (*BLOCKS.values(), *VIP_BLOCKS.values()):
            assert 0 < slot.block(base) < 255 and slot.block(base) not in used_by_tests
