"""``recon.toml``: what the unattended pipeline reads, validated on load with every problem listed.

Example (see the README for the whole file)::

    [inbox]
    url = "s3://acme-telecom/invoices"        # or a local folder; gs://, az:// through fsspec
    [outbox]
    url = "s3://acme-telecom/reconciliation"
    [store]
    path = "/var/lib/recon/recon.duckdb"      # optional (default: the user data directory)
    [genesys]
    region = "us_east_1"                      # or base_url = "https://api.mypurecloud.com"
    [reconcile]
    time_tolerance_s = 10
    period = "month"                          # or "day"
    [alerts]
    threshold_pct = 2.0
    [[carriers]]
    name = "twilio"
    profile = "twilio"                        # a shipped profile, or a path to a YAML profile
    folder = "twilio"                         # inbox sub-folder (optional)
    pattern = "*.csv"                         # file-name pattern (optional)
    cycle_start_utc = "00:00"                 # billing-cycle edge; Genesys Cloud Voice bills 07:00 to 07:00 UTC
    rate = "inbound=0.022,outbound=0.014"     # or rate_deck = "deck.csv", or use_invoice_rate = true

Credentials never live here: object storage reads the usual environment (AWS_*, GOOGLE_*,
AZURE_*), Genesys Cloud ``GENESYS_CLIENT_ID`` / ``GENESYS_CLIENT_SECRET`` (or the variable
names given as ``client_id_env`` / ``client_secret_env``).
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from recon_core.errors import PipelineConfigError, ReconError

PERIOD_KINDS = ("month", "day")
GENESYS_VOICE_CYCLE_START = "07:00"
DEFAULT_THRESHOLD_PCT = 2.0
SECRET_KEYS = ("secret", "password", "token", "key_id", "access_key", "secret_key", "credentials")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_URL_SCHEMES = ("s3://", "gs://", "gcs://", "az://", "abfs://", "file://", "memory://")

KNOWN = {
    "": {"inbox", "outbox", "store", "genesys", "reconcile", "alerts", "carriers"},
    "inbox": {"url"},
    "outbox": {"url"},
    "store": {"path"},
    "genesys": {"region", "base_url", "client_id_env", "client_secret_env", "number_region", "max_rpm",
                "poll_initial_s", "max_wait_s"},
    "reconcile": {"time_tolerance_s", "max_tolerance_s", "cost_abs_tolerance", "cost_pct_tolerance", "period",
                  "margin_s"},
    "alerts": {"enabled", "threshold_pct", "environment", "severity"},
    "carriers": {"name", "profile", "folder", "pattern", "cycle_start_utc", "rate", "rate_deck", "use_invoice_rate",
                 "increment", "invoice_tz"},
}


@dataclass(frozen=True)
class CarrierConfig:
    """One carrier: how its invoices are found in the inbox, read, rated and cut into periods."""

    name: str
    profile: str
    folder: str | None = None
    pattern: str = "*"
    cycle_start_utc: str = "00:00"
    rate: str | None = None
    rate_deck: str | None = None
    use_invoice_rate: bool = False
    increment: str | None = None
    invoice_tz: str | None = None

    @property
    def cycle_offset_minutes(self) -> int:
        hours, minutes = self.cycle_start_utc.split(":")
        return int(hours) * 60 + int(minutes)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "profile": self.profile, "folder": self.folder, "pattern": self.pattern,
                "cycle_start_utc": self.cycle_start_utc, "rate": self.rate, "rate_deck": self.rate_deck,
                "use_invoice_rate": self.use_invoice_rate, "increment": self.increment, "invoice_tz": self.invoice_tz}


@dataclass(frozen=True)
class GenesysSource:
    """Where the CDR side comes from: a Genesys Cloud region (or base URL) and the credential variables."""

    region: str | None = None
    base_url: str | None = None
    client_id_env: str = "GENESYS_CLIENT_ID"
    client_secret_env: str = "GENESYS_CLIENT_SECRET"
    number_region: str = "US"
    max_rpm: int = 300
    poll_initial_s: float = 1.0
    max_wait_s: float = 180.0

    def to_dict(self) -> dict[str, Any]:
        return {"region": self.region, "base_url": self.base_url, "client_id_env": self.client_id_env,
                "client_secret_env": self.client_secret_env, "number_region": self.number_region,
                "max_rpm": self.max_rpm, "poll_initial_s": self.poll_initial_s, "max_wait_s": self.max_wait_s}


@dataclass(frozen=True)
class PipelineConfig:
    """The whole validated ``recon.toml``."""

    source: str
    inbox_url: str
    outbox_url: str
    genesys: GenesysSource
    carriers: tuple[CarrierConfig, ...]
    store_path: str | None = None
    time_tolerance_s: float = 10.0
    max_tolerance_s: float = 60.0
    cost_abs_tolerance: str = "0.01"
    cost_pct_tolerance: str = "0.1"
    period: str = "month"
    margin_s: float | None = None
    alerts_enabled: bool = True
    alert_threshold_pct: float = DEFAULT_THRESHOLD_PCT
    alert_environment: str = "production"
    alert_severity: str = "warning"
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def edge_margin_s(self) -> float:
        """Seconds of CDR data read beyond each period edge (default: the time tolerance)."""
        return self.time_tolerance_s if self.margin_s is None else self.margin_s

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "inbox_url": self.inbox_url, "outbox_url": self.outbox_url,
                "store_path": self.store_path, "genesys": self.genesys.to_dict(),
                "carriers": [c.to_dict() for c in self.carriers], "time_tolerance_s": self.time_tolerance_s,
                "max_tolerance_s": self.max_tolerance_s, "cost_abs_tolerance": self.cost_abs_tolerance,
                "cost_pct_tolerance": self.cost_pct_tolerance, "period": self.period, "margin_s": self.edge_margin_s,
                "alerts": {"enabled": self.alerts_enabled, "threshold_pct": self.alert_threshold_pct,
                           "environment": self.alert_environment, "severity": self.alert_severity}}

    @property
    def config_hash(self) -> str:
        """SHA-256 of the settings that decide results (not of comments or alert wording)."""
        data = self.to_dict()
        data.pop("source")
        data.pop("alerts")
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _is_url(text: str) -> bool:
    return text.lower().startswith(_URL_SCHEMES)


def _number(raw: Mapping[str, Any], key: str, default: float, problems: list[str], where: str, *,
            low: float, high: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(f"{where}.{key} must be a number, got {value!r}")
        return default
    if not low <= float(value) <= high:
        problems.append(f"{where}.{key} must be between {low:g} and {high:g}, got {value!r}")
        return default
    return float(value)


def _text(raw: Mapping[str, Any], key: str, problems: list[str], where: str, *, required: bool = False,
          default: str | None = None) -> str | None:
    value = raw.get(key, default)
    if value is None:
        if required:
            problems.append(f"{where}.{key} is required")
        return None
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}.{key} must be non-empty text, got {value!r}")
        return default
    return value.strip()


def _secrets_in(raw: Mapping[str, Any], where: str, problems: list[str]) -> None:
    for key, value in raw.items():
        lowered = str(key).lower()
        if any(part in lowered for part in SECRET_KEYS) and not lowered.endswith("_env"):
            problems.append(f"{where}.{key}: credentials must not be written in the configuration; "
                            "put them in environment variables")
        if isinstance(value, Mapping):
            _secrets_in(value, f"{where}.{key}" if where else str(key), problems)
        elif isinstance(value, str) and re.match(r"^[a-z0-9]+://[^/@\s]+:[^/@\s]+@", value):
            problems.append(f"{where}.{key}: the URL carries a user name and password; "
                            "take credentials from the environment instead")


def _unknown_keys(raw: Mapping[str, Any], section: str, problems: list[str], where: str) -> None:
    for key in raw:
        if key not in KNOWN[section]:
            problems.append(f"{where}: unknown setting {key!r} (known: {', '.join(sorted(KNOWN[section]))})")


def _carrier(raw: Any, index: int, problems: list[str]) -> CarrierConfig | None:
    where = f"carriers[{index}]"
    if not isinstance(raw, Mapping):
        problems.append(f"{where} must be a table ([[carriers]])")
        return None
    _unknown_keys(raw, "carriers", problems, where)
    name = _text(raw, "name", problems, where, required=True) or f"carrier{index}"
    where = f"carriers[{index}] ({name})"
    profile = _text(raw, "profile", problems, where, default=name) or name
    folder = _text(raw, "folder", problems, where)
    pattern = _text(raw, "pattern", problems, where, default="*") or "*"
    cycle = _text(raw, "cycle_start_utc", problems, where,
                  default=GENESYS_VOICE_CYCLE_START if "genesys" in profile.lower() else "00:00") or "00:00"
    if not _TIME.match(cycle):
        problems.append(f"{where}.cycle_start_utc must be HH:MM in UTC (e.g. 07:00 for Genesys Cloud Voice), "
                        f"got {cycle!r}")
        cycle = "00:00"
    rate = _text(raw, "rate", problems, where)
    deck = _text(raw, "rate_deck", problems, where)
    use_invoice_rate = raw.get("use_invoice_rate", False)
    if not isinstance(use_invoice_rate, bool):
        problems.append(f"{where}.use_invoice_rate must be true or false")
        use_invoice_rate = False
    if rate and deck:
        problems.append(f"{where}: give rate or rate_deck, not both")
    if not rate and not deck and not use_invoice_rate:
        problems.append(f"{where}: no rate to check costs against: set rate (e.g. \"inbound=0.022,outbound=0.014\"), "
                        "rate_deck, or use_invoice_rate = true")
    if rate:
        from recon_core.commands.reconcile import parse_rate_option

        try:
            parse_rate_option(rate)
        except ReconError as exc:
            problems.append(f"{where}.rate: {exc}")
    if deck and not Path(deck).is_file():
        problems.append(f"{where}.rate_deck: file {deck} not found (a local CSV file)")
    increment = _text(raw, "increment", problems, where)
    if increment:
        from recon_core.rating import parse_increment

        try:
            parse_increment(increment)
        except ReconError as exc:
            problems.append(f"{where}.increment: {exc}")
    try:
        from recon_core.cli import profile_from_args

        profile_from_args(_profile_args(profile))
    except ReconError as exc:
        problems.append(f"{where}.profile: {exc}")
    return CarrierConfig(name, profile, folder.strip("/") if folder else None, pattern, cycle, rate, deck,
                         use_invoice_rate, increment, _text(raw, "invoice_tz", problems, where))


def _profile_args(profile: str) -> Any:
    import argparse

    is_path = profile.endswith((".yaml", ".yml")) or "/" in profile
    return argparse.Namespace(profile=Path(profile) if is_path else None, carrier=None if is_path else profile)


def load_mapping_profile(carrier: CarrierConfig) -> Any:
    """The carrier's mapping profile (shipped name or YAML path), with ``invoice_tz`` applied."""
    from recon_core.cli import profile_from_args
    from recon_core.profiles import profile_from_dict

    profile = profile_from_args(_profile_args(carrier.profile))
    if carrier.invoice_tz:
        data = profile.to_dict()
        data["timestamps"]["timezone"] = carrier.invoice_tz
        profile = profile_from_dict(data, f"{profile.name} with invoice_tz {carrier.invoice_tz}")
    return profile


def parse_config(raw: Mapping[str, Any], source: str = "recon.toml") -> PipelineConfig:
    """Validate a parsed TOML document.

    Raises:
        PipelineConfigError: listing every problem found.
    """
    problems: list[str] = []
    _unknown_keys(raw, "", problems, source)
    _secrets_in(raw, "", problems)
    sections: dict[str, Mapping[str, Any]] = {}
    for name in ("inbox", "outbox", "store", "genesys", "reconcile", "alerts"):
        value = raw.get(name, {})
        if not isinstance(value, Mapping):
            problems.append(f"[{name}] must be a table")
            value = {}
        else:
            _unknown_keys(value, name, problems, f"[{name}]")
        sections[name] = value
    inbox = _text(sections["inbox"], "url", problems, "inbox", required=True) or ""
    outbox = _text(sections["outbox"], "url", problems, "outbox", required=True) or ""
    if inbox and outbox and inbox.rstrip("/") == outbox.rstrip("/"):
        problems.append("inbox.url and outbox.url must differ (reports would be taken for invoices)")
    for label, url in (("inbox", inbox), ("outbox", outbox)):
        if url and "://" in url and not _is_url(url):
            problems.append(f"{label}.url {url!r}: use a local folder or an s3://, gs://, az:// URL")
    store = _text(sections["store"], "path", problems, "store")
    g = sections["genesys"]
    region = _text(g, "region", problems, "genesys")
    base_url = _text(g, "base_url", problems, "genesys")
    if not region and not base_url:
        problems.append("[genesys] needs region (e.g. \"us_east_1\") or base_url")
    else:
        from recon_core.genesys.regions import resolve_endpoints

        try:
            resolve_endpoints(region, base_url)
        except ReconError as exc:
            problems.append(f"[genesys]: {exc}")
    genesys = GenesysSource(
        region, base_url,
        _text(g, "client_id_env", problems, "genesys", default="GENESYS_CLIENT_ID") or "GENESYS_CLIENT_ID",
        _text(g, "client_secret_env", problems, "genesys", default="GENESYS_CLIENT_SECRET") or "GENESYS_CLIENT_SECRET",
        _text(g, "number_region", problems, "genesys", default="US") or "US",
        int(_number(g, "max_rpm", 300, problems, "genesys", low=1, high=10_000)),
        _number(g, "poll_initial_s", 1.0, problems, "genesys", low=0.0, high=60.0),
        _number(g, "max_wait_s", 180.0, problems, "genesys", low=0.0, high=3600.0),
    )
    r = sections["reconcile"]
    tolerance = _number(r, "time_tolerance_s", 10.0, problems, "reconcile", low=0.0, high=3600.0)
    max_tolerance = _number(r, "max_tolerance_s", max(60.0, tolerance), problems, "reconcile", low=0.0, high=3600.0)
    if max_tolerance < tolerance:
        problems.append("reconcile.max_tolerance_s must not be below reconcile.time_tolerance_s")
    costs = []
    for key, default in (("cost_abs_tolerance", "0.01"), ("cost_pct_tolerance", "0.1")):
        value = str(r.get(key, default)).strip().rstrip("%")
        try:
            if Decimal(value) < 0:
                raise InvalidOperation
        except InvalidOperation:
            problems.append(f"reconcile.{key} must be a number of 0 or more, got {r.get(key)!r}")
            value = default
        costs.append(value)
    period = _text(r, "period", problems, "reconcile", default="month") or "month"
    if period not in PERIOD_KINDS:
        problems.append(f"reconcile.period must be one of {', '.join(PERIOD_KINDS)}, got {period!r}")
    margin = r.get("margin_s")
    margin_s = None if margin is None else _number(r, "margin_s", tolerance, problems, "reconcile", low=0.0,
                                                   high=86_400.0)
    a = sections["alerts"]
    enabled = a.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.append("alerts.enabled must be true or false")
        enabled = True
    threshold = _number(a, "threshold_pct", DEFAULT_THRESHOLD_PCT, problems, "alerts", low=0.0, high=100.0)
    severity = _text(a, "severity", problems, "alerts", default="warning") or "warning"
    if severity not in ("info", "warning", "critical"):
        problems.append(f"alerts.severity must be info, warning or critical, got {severity!r}")
    carriers_raw = raw.get("carriers", [])
    carriers: list[CarrierConfig] = []
    if not isinstance(carriers_raw, list) or not carriers_raw:
        problems.append("at least one [[carriers]] table is required (name, profile, rate ...)")
    else:
        for i, item in enumerate(carriers_raw):
            carrier = _carrier(item, i, problems)
            if carrier is not None:
                carriers.append(carrier)
        names = [c.name for c in carriers]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"carrier name {dup!r} is used more than once")
    if problems:
        raise PipelineConfigError(source, problems)
    return PipelineConfig(
        source, inbox, outbox, genesys, tuple(carriers), store, tolerance, max_tolerance, costs[0], costs[1],
        period, margin_s, enabled, threshold,
        _text(a, "environment", problems, "alerts", default="production") or "production", severity, dict(raw))


def load_config(path: Path | str) -> PipelineConfig:
    """Read and validate ``recon.toml``.

    Raises:
        PipelineConfigError: the file is missing, not TOML, or invalid (every problem listed).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise PipelineConfigError(str(p), [f"cannot read the file ({exc.strerror or exc})"]) from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PipelineConfigError(str(p), [f"not valid TOML: {exc}"]) from exc
    return parse_config(raw, str(p))
