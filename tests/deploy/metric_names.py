"""Metric names: those PromQL expressions use, and those LogMaster really exports.

The exported names are read from the source (every string literal ``"logmaster_..."`` passed to
a metric family or prometheus-client metric), because the alert rules and dashboards must name
metrics of every process, including ones a test cannot start cheaply. The real Prometheus test
(``test_prometheus_server.py``) checks the collector's and indexer's names on a live scrape.
"""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "logmaster"

# Names the alerts and dashboards use that no LogMaster process exports yet; each is asked of
# the engineer who owns that process (and listed in deploy/README.md). When one appears in the
# source the test below fails until it is removed from this set. Empty: every name is exported.
NOT_YET_EXPORTED: set[str] = set()

# Exported by other programs the deployment runs.
PROMETHEUS = {"up", "scrape_duration_seconds"}
NODE_EXPORTER = {"node_filesystem_avail_bytes", "node_filesystem_size_bytes"}
PROCESS = {
    "process_cpu_seconds",
    "process_resident_memory_bytes",
    "process_open_fds",
    "process_start_time_seconds",
}

_SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created")
_KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "inf",
    "nan",
}


def exported() -> set[str]:
    """Base names (without _total/_bucket/...) of the metrics LogMaster defines.

    The collector's and indexer's custom collectors are asked for their families (their names
    are built with f-strings); every other ``"logmaster_..."`` literal of the source counts too.
    """
    from logmaster.archive.tsa import TSA_REGISTRY
    from logmaster.collector.stats import CollectorMetrics, DeviceStats, ListenerStats
    from logmaster.index.indexer import IndexerStats
    from logmaster.index.metrics import IndexerMetrics

    archive = {
        "lines": 0,
        "bytes": 0,
        "write_errors": {},
        "torn_bytes_cut": 0,
        "resyncs": 0,
        "buffered_bytes": 0,
        "open_files": 0,
        "failing": False,
        "unregistered": 0,
    }
    collector = CollectorMetrics(
        lambda: {"gw": DeviceStats()}, lambda: [ListenerStats("udp://x")], lambda: archive
    )

    class _Indexer:
        stats = IndexerStats()

    names = {m.name for m in collector.collect()}
    names |= {m.name for m in IndexerMetrics(_Indexer()).collect()}
    names |= {m.name for m in TSA_REGISTRY.collect()}
    for path in SRC.rglob("*.py"):
        names.update(re.findall(r"[\"'](logmaster_[a-z0-9_]+)[\"']", path.read_text()))
    return {base(n) for n in names}


# Labels every series has (Prometheus's target labels, prometheus.yml's `node`, histogram le).
TARGET_LABELS = {"job", "instance", "node", "le", "__name__"}
NODE_EXPORTER_LABELS = {"device", "fstype", "mountpoint"}


def labels() -> dict[str, set[str]]:
    """Base name -> label names, of every metric LogMaster defines.

    Custom collectors are asked for their samples (with one of each label in use);
    prometheus-client metrics of the registries say their label names.
    """
    from logmaster.api.metrics import API_REGISTRY
    from logmaster.archive.tsa import TSA_REGISTRY
    from logmaster.collector.stats import CollectorMetrics, DeviceStats, ListenerStats
    from logmaster.compliance.alerts import ALERT_REGISTRY
    from logmaster.index.indexer import IndexerStats
    from logmaster.index.metrics import IndexerMetrics

    archive = {
        "lines": 0,
        "bytes": 0,
        "write_errors": {"ENOSPC": 1},
        "torn_bytes_cut": 0,
        "resyncs": 0,
        "buffered_bytes": 0,
        "open_files": 0,
        "failing": False,
        "unregistered": 0,
    }
    stats = IndexerStats()
    stats.failures["gw"] = 1

    class _Indexer:
        pass

    _Indexer.stats = stats  # type: ignore[attr-defined]
    out: dict[str, set[str]] = {}
    families = [
        *CollectorMetrics(
            lambda: {"gw": DeviceStats()}, lambda: [ListenerStats("udp://x")], lambda: archive
        ).collect(),
        *IndexerMetrics(_Indexer()).collect(),  # type: ignore[arg-type]
    ]
    for fam in families:
        found = out.setdefault(base(fam.name), set())
        for sample in fam.samples:
            found |= set(sample.labels) - {"le"}
    for registry in (API_REGISTRY, TSA_REGISTRY, ALERT_REGISTRY):
        for metric in list(registry._collector_to_names):
            name, names = getattr(metric, "_name", None), getattr(metric, "_labelnames", None)
            if isinstance(name, str) and names is not None:
                out.setdefault(base(name), set()).update(names)
    return out


def expr_labels(expr: str) -> set[str]:
    """Label names a PromQL expression groups, joins or filters by."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    found: set[str] = set()
    for m in re.finditer(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", text
    ):
        found |= {x.strip() for x in m.group(1).split(",") if x.strip()}
    for m in re.finditer(r"\{([^}]*)\}", text):
        found |= set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", m.group(1)))
    return found


def unknown_labels(expr: str, extra: set[str] | None = None) -> set[str]:
    """Labels ``expr`` (or its annotations: ``extra``) uses that none of its metrics has."""
    known = labels()
    names = used(expr)
    allowed = set(TARGET_LABELS)
    for name in names:
        allowed |= known.get(base(name), set())
        if name in NODE_EXPORTER:
            allowed |= NODE_EXPORTER_LABELS
    return (expr_labels(expr) | (extra or set())) - allowed


def base(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def used(expr: str) -> set[str]:
    """Metric names in a PromQL expression (functions, keywords, labels and strings left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\$\{?\w+\}?", "", text)  # Grafana variables such as $__rate_interval
    names = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?", text):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in _KEYWORDS:
            continue
        if re.fullmatch(r"\d+[smhdwy]", word):  # offsets like 1h are caught as numbers anyway
            continue
        names.add(word)
    return names


def unknown(names: set[str]) -> set[str]:
    """Names of ``names`` that nothing exports (nor is listed as pending)."""
    known = exported() | NOT_YET_EXPORTED | PROMETHEUS | NODE_EXPORTER | PROCESS
    return {n for n in names if base(n) not in known and n not in known}
