"""Local servers on loopback for the alert delivery tests: a webhook (http.server) and SMTP (aiosmtpd).

The fixtures are re-exported by ``conftest.py``; tests import the types from here."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from loopback_webhook import WebhookRecorder

SMTP_USER = "alerts@example.test"
SMTP_PASSWORD = "s3cret-Pa55word"


WebhookServer = WebhookRecorder


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    with WebhookRecorder() as recorder:
        yield recorder


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1 / localhost, made with the openssl CLI."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl command is needed to make a test certificate (apt-get install openssl)")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )
    return Certificate(cert, key)


@dataclass
class SmtpServer:
    host: str
    port: int
    messages: list[Envelope] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    tls_sessions: list[bool] = field(default_factory=list)  # per DATA: was the session TLS-protected


class _Recorder:
    def __init__(self, state: SmtpServer) -> None:
        self.state = state

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.state.messages.append(envelope)
        self.state.tls_sessions.append(session.ssl is not None)
        return "250 Message accepted for delivery"


def _authenticator(state: SmtpServer) -> Any:
    def check(server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == SMTP_USER
              and auth_data.password.decode() == SMTP_PASSWORD)
        if ok:
            state.logins.append(auth_data.login.decode())
        # handled=False: aiosmtpd answers a failure with 535 itself (True would leave the client waiting).
        return AuthResult(success=ok, handled=False)
    return check


def _start(state: SmtpServer, **smtp_parameters: Any) -> Controller:
    controller = Controller(_Recorder(state), hostname=state.host, port=state.port, ready_timeout=10,
                            **smtp_parameters)
    controller.start()
    return controller


@pytest.fixture
def smtp_plain() -> Iterator[SmtpServer]:
    """SMTP without TLS or login (a relay on a trusted network)."""
    state = SmtpServer("127.0.0.1", free_port())
    controller = _start(state)
    try:
        yield state
    finally:
        controller.stop()


@pytest.fixture
def smtp_starttls(self_signed: Certificate) -> Iterator[SmtpServer]:
    """SMTP that requires STARTTLS (self-signed certificate) and then a login."""
    state = SmtpServer("127.0.0.1", free_port())
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(self_signed.cert, self_signed.key)
    controller = _start(state, tls_context=context, require_starttls=True, auth_required=True,
                        auth_require_tls=True, authenticator=_authenticator(state))
    try:
        yield state
    finally:
        controller.stop()
