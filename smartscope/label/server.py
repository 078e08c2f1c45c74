"""The labelling page's HTTP server (standard library ``http.server``), for one person on this
computer.

Security: the socket is bound to 127.0.0.1 only; every request must carry the session's random
token (``?token=`` or an ``X-Token`` header, compared in constant time) and a ``Host`` header naming
127.0.0.1 or localhost at the server's port (a page of another site cannot reach it by DNS
rebinding); POST bodies must be JSON, at most 64 kB. The only files served are the page's own
three files and crops named by their id in the pool, decoded and re-encoded as PNG here; nothing
from a URL becomes a path. Labels are written only into the labelled folder (``LabelStore``).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from smartscope.errors import SmartscopeError
from smartscope.label.session import LabelSession

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
MAX_BODY = 64 * 1024
STATIC = {"/": ("page.html", "text/html; charset=utf-8"),
          "/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/app.css": ("app.css", "text/css; charset=utf-8")}
CROP_URL = re.compile(r"^/crop/([A-Za-z0-9][A-Za-z0-9_.-]{0,127})\.png$")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self'; connect-src 'self'; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


def _static(name: str) -> bytes:
    return resources.files("smartscope.label").joinpath("static", name).read_bytes()


class LabelServer(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 for one ``LabelSession``.

    Parameters
    ----------
    session : LabelSession
    port : int
        0 picks a free port.
    token : str, optional
        Default: ``secrets.token_urlsafe(24)``.
    """

    daemon_threads = True

    def __init__(self, session: LabelSession, port: int = 0, token: str | None = None) -> None:
        self.session = session
        self.token = token or secrets.token_urlsafe(24)
        super().__init__((HOST, port), _Handler)
        self.port = int(self.server_address[1])
        self.hosts = {f"{HOST}:{self.port}", f"localhost:{self.port}"}

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A browser that drops a connection is not an error worth a traceback on the console."""
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError):
            log.debug("connection from %s dropped: %s", client_address, exc)
        else:
            log.error("request from %s failed", client_address, exc_info=exc)

    @property
    def url(self) -> str:
        """The page's address, token included."""
        return f"http://{HOST}:{self.port}/?token={self.token}"


class _Handler(BaseHTTPRequestHandler):
    server: LabelServer
    protocol_version = "HTTP/1.1"
    server_version = "smartscope-label"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        log.debug("%s " + format, self.address_string(), *args)

    # -- replies -------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in SECURITY_HEADERS.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: Any, status: int = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json({"error": message}, status)

    # -- checks ---------------------------------------------------------------------------------
    def _allowed(self) -> dict[str, list[str]] | None:
        """Query of an allowed request, else None after sending 403/404."""
        if self.headers.get("Host", "") not in self.server.hosts:
            self._error(HTTPStatus.FORBIDDEN, "wrong Host")
            return None
        query = parse_qs(urlsplit(self.path).query)
        token = self.headers.get("X-Token") or (query.get("token") or [""])[0]
        if not secrets.compare_digest(token.encode(), self.server.token.encode()):
            self._error(HTTPStatus.FORBIDDEN, "missing or wrong token")
            return None
        return query

    # -- routes ---------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        query = self._allowed()
        if query is None:
            return
        route = urlsplit(self.path).path
        session = self.server.session
        try:
            if route in STATIC:
                name, ctype = STATIC[route]
                body = _static(name).replace(b"{{TOKEN}}", self.server.token.encode())
                self._send(HTTPStatus.OK, body, ctype)
            elif route == "/api/page":
                self._json(session.page(int((query.get("n") or ["24"])[0])))
            elif route == "/api/state":
                self._json(session.state())
            elif (m := CROP_URL.match(route)) is not None:
                self._send(HTTPStatus.OK, session.png(m.group(1)), "image/png")
            else:
                self._error(HTTPStatus.NOT_FOUND, "not found")
        except KeyError:
            self._error(HTTPStatus.NOT_FOUND, "no such crop in the pool")
        except ValueError:
            self._error(HTTPStatus.BAD_REQUEST, "bad number")
        except SmartscopeError as e:  # an unreadable crop: details on the console only
            log.error("%s", e)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, "cannot read this crop; see the console")

    do_HEAD = do_GET

    def do_POST(self) -> None:  # noqa: N802 (stdlib name)
        if self._allowed() is None:
            return
        if not self.headers.get("Content-Type", "").startswith("application/json"):
            self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send JSON")
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.close_connection = True
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
            return
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            self._error(HTTPStatus.BAD_REQUEST, "body is not JSON")
            return
        if not isinstance(body, dict):
            self._error(HTTPStatus.BAD_REQUEST, "body is not a JSON object")
            return
        route = urlsplit(self.path).path
        session = self.server.session
        try:
            if route == "/api/label":
                ids = body.get("ids")
                if not isinstance(ids, list) or not ids or not isinstance(body.get("label"), str):
                    self._error(HTTPStatus.BAD_REQUEST, "give ids (a list) and label")
                    return
                n = session.label(ids, body["label"])
                self._json({"labelled": n, **session.state()})
            elif route == "/api/skip":
                session.skip(body.get("id"))
                self._json({"skipped": body.get("id")})
            elif route == "/api/undo":
                self._json({"undone": session.undo(), **session.state()})
            else:
                self._error(HTTPStatus.NOT_FOUND, "not found")
        except KeyError:
            self._error(HTTPStatus.NOT_FOUND, "no such crop in the pool")
        except SmartscopeError as e:
            self._error(HTTPStatus.BAD_REQUEST, str(e))
