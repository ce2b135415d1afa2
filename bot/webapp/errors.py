"""The web layer's one error shape, shared by the routes, the limits and the health
endpoints: `{"error": {"code": ..., "message": ..., "detail": {...}}}`, never cached."""

from __future__ import annotations

from typing import Any

from aiohttp import web

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache", "X-Content-Type-Options": "nosniff"}


class ApiError(Exception):
    """A refusal decided by the web layer itself (bad path or header)."""

    def __init__(self, status: int, code: str, message: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.detail = status, code, message, detail or {}


def error_response(status: int, code: str, message: str, detail: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, "detail": detail or {}}},
                             status=status, headers={**NO_STORE, **(headers or {})})
