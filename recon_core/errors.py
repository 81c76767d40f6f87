"""One exception hierarchy for the whole engine.

Messages are written for a finance analyst: what is wrong, where (file, line, column,
profile key) and what to do about it. The CLI and every page catch ``ReconError`` in one
place and show ``str(error)``; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


class ReconError(Exception):
    """Base class of every error the product reports to a person."""

    exit_code = 2


class ProfileError(ReconError):
    """A mapping profile is missing, unreadable or invalid.

    ``problems`` lists every problem found, so a page can show them all at once.
    """

    def __init__(self, source: str, problems: Iterable[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        lines = "; ".join(self.problems)
        super().__init__(f"mapping profile {source} is invalid: {lines}")


class InputFileError(ReconError):
    """An input file cannot be read at all (missing, empty, not the expected format)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class SettingsError(ReconError):
    """Run settings (tolerances, increments, rates) are invalid."""


class LedgerError(ReconError):
    """Rows were lost or double-counted: read != matched + discrepancies + excluded + rejected."""


class StoreError(ReconError):
    """The local DuckDB store cannot be opened or migrated (newer version, read-only, locked)."""


class GenesysConfigError(ReconError):
    """Genesys Cloud connection settings are missing or invalid (region, credentials, filters)."""


class GenesysAuthError(ReconError):
    """Genesys Cloud refused the OAuth client credentials or the access token.

    Messages name the client id and the login host, never the client secret.
    """


class GenesysPermissionError(ReconError):
    """The OAuth client is authenticated but its role lacks a permission the request needs."""

    def __init__(self, permission: str, operation: str, detail: str = "") -> None:
        self.permission = permission
        self.operation = operation
        extra = f" (Genesys Cloud said: {detail})" if detail else ""
        super().__init__(
            f"Genesys Cloud refused {operation}: the OAuth client's role lacks the permission "
            f"{permission}; ask your Genesys Cloud admin to grant it{extra}"
        )


class GenesysApiError(ReconError):
    """Genesys Cloud answered a request with an error the client cannot recover from."""

    def __init__(self, message: str, *, status: int | None = None, operation: str = "") -> None:
        self.status = status
        self.operation = operation
        super().__init__(message)


class GenesysRetriesExhaustedError(GenesysApiError):
    """A request kept failing (429 / 5xx / timeouts) until the retry budget ran out."""


class GenesysJobError(GenesysApiError):
    """A conversation-details job ended FAILED, CANCELLED or EXPIRED on every attempt for a day."""


class GenesysDataPendingError(GenesysApiError):
    """Genesys Cloud is still preparing the data (409/503 from a data endpoint, or a slow job).

    The fetch records the day as pending instead of failing the run.
    """


class GenesysDataUnavailableError(ReconError):
    """Requested days lie after the jobs endpoint's ``dataAvailabilityDate``."""


class AlertConfigError(ReconError):
    """Alert delivery settings (webhook URL, SMTP server, sender, recipients) are missing or invalid."""


class StoreBusyError(StoreError):
    """The store stayed locked by another program (a run being written) for longer than the wait allowed."""


class RunNotFoundError(ReconError):
    """A run id names no run in the store."""


class PipelineConfigError(SettingsError):
    """The pipeline configuration file (recon.toml) is missing, unreadable or invalid.

    ``problems`` lists every problem found, so the operator can fix them in one go.
    """

    def __init__(self, source: str, problems: Iterable[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__(f"configuration {source} is invalid: " + "; ".join(self.problems))
