"""The iptables rules rendered like kube-proxy's chains."""

from __future__ import annotations

from bench.emulation.iptables import render
from bench.emulation.model import Endpoint, VirtualService


def test_iptables_rules_chain_like_kube_proxy() -> None:
    vip = VirtualService("inventory", "127.0.107.1", 8000)
    eps = [Endpoint("127.0.7.1", 9001, "inventory-0"), Endpoint("127.0.7.2", 9002, "inventory-1")]
    eps.append(Endpoint("127.0.7.3", 9003, "inventory-2"))
    payload, chains = render("BENCHTEST00", {"inventory": (vip, eps)}, stale={"BENCHTEST00-SEP-OLD"})
    lines = payload.splitlines()
    jumps = [line for line in lines if line.startswith("-A BENCHTEST00-SVC-")]
    assert "--probability 0.3333333333" in jumps[0] and "--probability 0.5000000000" in jumps[1]
    assert "statistic" not in jumps[2] and len(jumps) == 3
    assert sum("DNAT --to-destination 127.0.7." in line for line in lines) == 3
    assert ":BENCHTEST00-SEP-OLD - [0:0]" in lines and "-X BENCHTEST00-SEP-OLD" in lines
    assert all(len(c) <= 28 for c in chains) and lines[0] == "*nat" and lines[-1] == "COMMIT"
    empty, _ = render("BENCHTEST00", {"inventory": (vip, [])})
    assert "DNAT" not in empty and "-SVC-" not in empty
