"""recon.toml: validated on load, every problem listed at once, exit 2 from the command."""

from __future__ import annotations

from pathlib import Path

import pytest

from recon_core.cli import main
from recon_core.errors import PipelineConfigError
from recon_core.pipeline.config import load_config, parse_config

GOOD = {
    "inbox": {"url": "s3://acme/invoices"}, "outbox": {"url": "s3://acme/reports"},
    "genesys": {"region": "us_east_1"},
    "carriers": [{"name": "twilio", "profile": "twilio", "rate": "inbound=0.022,outbound=0.014"},
                 {"name": "voice", "profile": "genesys_voice_usage", "use_invoice_rate": True}],
}


def test_a_good_config_loads_with_defaults() -> None:
    config = parse_config(GOOD)
    assert config.time_tolerance_s == 10.0 and config.period == "month" and config.alert_threshold_pct == 2.0
    assert config.edge_margin_s == 10.0
    twilio, voice = config.carriers
    assert twilio.cycle_start_utc == "00:00"
    assert voice.cycle_start_utc == "07:00"  # Genesys Cloud Voice bills 07:00 to 07:00 UTC
    assert voice.cycle_offset_minutes == 420
    assert len(config.config_hash) == 64


@pytest.mark.parametrize(("change", "expected"), [
    ({"inbox": {}}, "inbox.url is required"),
    ({"outbox": {"url": "s3://acme/invoices"}}, "must differ"),
    ({"outbox": {"url": "ftp://host/x"}}, "use a local folder or an s3://"),
    ({"genesys": {}}, "needs region"),
    ({"genesys": {"region": "mars_1"}}, "[genesys]"),
    ({"genesys": {"region": "us_east_1", "client_secret": "abc"}}, "credentials must not be written"),
    ({"inbox": {"url": "s3://user:pw@acme/x"}}, "user name and password"),
    ({"reconcile": {"time_tolerance_s": -1}}, "reconcile.time_tolerance_s must be between"),
    ({"reconcile": {"period": "week"}}, "reconcile.period must be one of"),
    ({"reconcile": {"cost_pct_tolerance": "lots"}}, "cost_pct_tolerance must be a number"),
    ({"alerts": {"threshold_pct": "2%"}}, "alerts.threshold_pct must be a number"),
    ({"carriers": []}, "at least one [[carriers]]"),
    ({"carriers": [{"name": "x", "profile": "nope"}]}, "no rate to check costs against"),
    ({"carriers": [{"name": "x", "profile": "nope", "rate": "0.01"}]}, "carriers[0] (x).profile"),
    ({"carriers": [{"name": "t", "profile": "twilio", "rate": "0.01", "cycle_start_utc": "7am"}]}, "HH:MM"),
    ({"carriers": [{"name": "t", "profile": "twilio", "rate": "sideways=1"}]}, "carriers[0] (t).rate"),
    ({"carriers": [{"name": "t", "profile": "twilio", "rate": "0.01"}] * 2}, "used more than once"),
    ({"surprise": 1}, "unknown setting 'surprise'"),
])
def test_each_problem_is_named(change: dict, expected: str) -> None:
    with pytest.raises(PipelineConfigError) as caught:
        parse_config({**GOOD, **change})
    assert any(expected in p for p in caught.value.problems), caught.value.problems


def test_every_problem_is_listed_at_once() -> None:
    raw = {"inbox": {}, "outbox": {}, "genesys": {}, "reconcile": {"period": "week"}, "carriers": []}
    with pytest.raises(PipelineConfigError) as caught:
        parse_config(raw)
    assert len(caught.value.problems) >= 5


def test_the_run_command_exits_2_with_the_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "recon.toml"
    path.write_text('[inbox]\nurl = "in"\n[reconcile]\nperiod = "week"\n', encoding="utf-8")
    assert main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "recon.toml is invalid" in err and "outbox.url is required" in err and "reconcile.period" in err
    assert main(["run", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read the file" in capsys.readouterr().err
    path.write_text("[inbox\n", encoding="utf-8")
    with pytest.raises(PipelineConfigError, match="not valid TOML"):
        load_config(path)


@pytest.mark.parametrize(("args", "message"), [
    (["--period", "2026-10-31"], "must be a month"),
    (["--date", "2026-10"], "must be a day"),
    (["--period", "October"], "must be a month like 2026-10"),
])
def test_period_options_are_checked(tmp_path: Path, args: list[str], message: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    import tomllib  # noqa: F401 - the config is valid; only the option is wrong

    path = tmp_path / "recon.toml"
    path.write_text('[inbox]\nurl = "in"\n[outbox]\nurl = "out"\n[genesys]\nregion = "us_east_1"\n'
                    '[[carriers]]\nname = "twilio"\nrate = "0.01"\n', encoding="utf-8")
    assert main(["run", "--config", str(path), *args]) == 2
    assert message in capsys.readouterr().err
