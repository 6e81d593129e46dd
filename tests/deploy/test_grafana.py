"""deploy/grafana: the dashboard loads, covers ingest, devices, compliance and API, and every
expression names metrics that exist; the provisioning files point at it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from metric_names import unknown, unknown_labels, used

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"


def dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((GRAFANA / "dashboards" / "logmaster.json").read_text())
    return doc


def expressions() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] if p["type"] != "row" for t in p["targets"]]


def test_dashboard_shape() -> None:
    d = dashboard()
    assert d["uid"] == "logmaster-overview"
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    rows = [p["title"] for p in d["panels"] if p["type"] == "row"]
    assert [r.split(" /")[0] for r in rows] == ["Ingest", "Devices", "Compliance", "API"]
    for p in d["panels"]:
        assert set(p["gridPos"]) == {"h", "w", "x", "y"}
        assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24, p["title"]
        if p["type"] != "row":
            assert p["targets"], p["title"]
            # One datasource variable, chosen at import; no hard-coded datasource uid.
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert " / " in p["title"]  # English / Türkçe
    assert d["templating"]["list"][0]["type"] == "datasource"


def test_every_expression_names_existing_metrics() -> None:
    names: set[str] = set()
    for expr in expressions():
        found = used(expr)
        assert found, expr
        names |= found
    assert "logmaster_listener_kernel_drops_total" in names
    assert unknown(names) == set()


def test_every_expression_uses_existing_labels() -> None:
    for expr in expressions():
        assert unknown_labels(expr) == set(), expr


def test_provisioning() -> None:
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "logmaster.yaml").read_text())
    assert ds["datasources"][0]["type"] == "prometheus"
    boards = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "logmaster.yaml").read_text()
    )
    provider = boards["providers"][0]
    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/var/lib/grafana/dashboards")
