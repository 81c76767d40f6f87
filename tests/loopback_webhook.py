"""One local webhook on loopback for every test that delivers alerts (a stand-in for Slack).

Importable from any test folder: ``tests/conftest.py`` puts ``tests/`` on ``sys.path``.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# The path stands in for a Slack webhook's secret part.
SECRET_PATH = "/services/T000/B000/XXXXSECRETXXXX"


class WebhookRecorder:
    """Records every POSTed JSON body and path; answers the scripted ``statuses`` one per request,
    then ``status`` (200 unless set). Use as a context manager; ``url`` is valid inside it."""

    def __init__(self, path: str = SECRET_PATH) -> None:
        self.path = path
        self.url = ""
        self.received: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.statuses: list[int] = []
        self.status = 200
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                recorder.paths.append(self.path)
                recorder.received.append(json.loads(body or b"{}"))
                status = recorder.statuses.pop(0) if recorder.statuses else recorder.status
                reply = b"ok" if status == 200 else b"internal_error"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookRecorder:
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{self.path}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
