"""cluster.py: node-qualified archive file references and per-node index figures."""

from __future__ import annotations

from logmaster.cluster import local_rel, local_stats, qualify, split_ref
from logmaster.config import load_settings, node_name


def test_references_round_trip() -> None:
    """qualify/split_ref: NODE:path in a shared index, the plain path otherwise."""
    assert qualify("log1", "gw/2026/12/01.log") == "log1:gw/2026/12/01.log"
    assert qualify(None, "gw/2026/12/01.log") == "gw/2026/12/01.log"
    assert split_ref("log1:gw/2026/12/01.log") == ("log1", "gw/2026/12/01.log")
    assert split_ref("gw/2026/12/01.log") == (None, "gw/2026/12/01.log")
    assert split_ref("ip-2001-db8--1/2026/12/01.log")[0] is None  # IPv6 slugs have no ':'


def test_local_paths_and_figures() -> None:
    """Another node's files are not this node's; plain (older) references are."""
    assert local_rel("log2:gw/2026/12/01.log", "log1") is None
    assert local_rel("log1:gw/2026/12/01.log", "log1") == "gw/2026/12/01.log"
    assert local_rel("gw/2026/12/01.log", "log1") == "gw/2026/12/01.log"
    stats = {
        "log1:gw/2026/12/01.log": (10, 1),
        "gw/2026/12/01.log": (5, 0),  # indexed before the node had a name
        "log2:gw/2026/12/01.log": (7, 7),
    }
    assert local_stats(stats, "log1") == {"gw/2026/12/01.log": (15, 1)}
    assert local_stats(None, "log1") is None


def test_node_name_setting() -> None:
    """The default node name is the host name made safe; the index qualifies only if shared."""
    assert node_name("Log-Server_1.example.COM") == "log-server_1.example.com"
    assert node_name("--") == "node"
    settings = load_settings(None, cluster={"node": "log1"})
    assert settings.cluster.node == "log1"
