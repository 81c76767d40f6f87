"""The metric registry, the tolerance policy file and the status map file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recon_core.errors import SettingsError
from recon_core.rtbatch.metrics import (
    KINDS,
    METRIC_REGISTRY,
    REGISTRY,
    MetricPolicy,
    StatusMap,
    Tolerance,
    load_policy,
    load_status_map,
    policy_from_rows,
    save_policy,
    save_status_map,
    status_map_from_rows,
)


def test_registry_is_consistent() -> None:
    for spec in METRIC_REGISTRY:
        assert spec.kind in KINDS
        if spec.derivation == "numerator/denominator":
            assert spec.numerator in REGISTRY and spec.denominator in REGISTRY, spec.name
        else:
            assert spec.api_metric and spec.stat in ("count", "sum", "ratio"), spec.name
    aht = REGISTRY["AHT"]
    assert (aht.numerator, aht.denominator) == ("tHandle", "nHandled")
    assert (REGISTRY["tHandle"].api_metric, REGISTRY["tHandle"].stat) == ("tHandle", "sum")
    assert (REGISTRY["nHandled"].api_metric, REGISTRY["nHandled"].stat) == ("tHandle", "count")


def test_default_tolerances_follow_the_issue() -> None:
    policy = MetricPolicy()
    assert policy.tolerance_for("nOffered") == Tolerance(2.0, 0.1)
    assert policy.tolerance_for("AHT").percent == 5.0 and policy.tolerance_for("tTalk").percent == 5.0
    assert policy.tolerance_for("oServiceLevel") == Tolerance(2.0, 0.0)
    assert policy.tolerance_for("tAgentRoutingStatus:IDLE").percent == 5.0


def test_policy_file_round_trip(tmp_path: Path) -> None:
    policy = MetricPolicy().with_tolerance("AHT", Tolerance(2.0, 8.0)).with_tolerance("nOffered", Tolerance(5, 0))
    path = save_policy(policy, tmp_path / "policy.json")
    assert load_policy(path) == policy
    assert json.loads(path.read_text())["metrics"]["AHT"] == {"absolute": 2.0, "percent": 8.0}


def test_policy_file_lists_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"metrics": {"AHTT": {"percent": 5}, "AHT": {"percent": "lots"},
                                            "nOffered": {"absolute": -1}}}))
    with pytest.raises(SettingsError) as info:
        load_policy(path)
    text = str(info.value)
    assert "unknown metric 'AHTT'" in text and "AHT: percent must be a number" in text and "nOffered" in text
    path.write_text("{not json")
    with pytest.raises(SettingsError, match="not valid JSON"):
        load_policy(path)


def test_policy_from_editor_rows_keeps_only_changes() -> None:
    rows = MetricPolicy().table()
    for r in rows:
        if r["metric"] == "ASA":
            r["percent"] = 10
    policy = policy_from_rows(rows)
    assert policy.overrides == (("ASA", Tolerance(1.0, 10.0)),)


def test_status_map_files_and_rows(tmp_path: Path) -> None:
    path = tmp_path / "statuses.json"
    path.write_text(json.dumps({"statuses": {"Project Work": "BUSY"}}))
    status_map = load_status_map(path)
    assert status_map.classify("project work") == "BUSY"
    assert load_status_map(save_status_map(status_map, tmp_path / "again.json")) == status_map
    edited = status_map_from_rows([*status_map.table(), {"realtime_status": "Lunch", "batch_classification": "MEAL"}])
    assert edited.classify("Lunch") == "MEAL" and edited.classify("Project Work") == "BUSY"
    assert StatusMap().classify("Lunch") is None
    path.write_text(json.dumps({"statuses": {"Project Work": ""}}))
    with pytest.raises(SettingsError, match="non-empty batch classification"):
        load_status_map(path)
