"""Tokens: any valid token may write to any namespace and read private repos; ``role="read"``
tokens may only read."""

from __future__ import annotations

from .answer import HubError

TEST_TOKEN = "hf_test_write_token_0123456789"
READ_TOKEN = "hf_test_read_token_0123456789"


class AuthMixin:
    """Who a request's ``Authorization`` header names, and whether they may write."""

    tokens: dict[str, tuple[str, str]]

    def _authenticate(self, header: str | None) -> tuple[str, str] | None:
        if not header:
            return None
        token = header.split(" ", 1)[1].strip() if " " in header else header.strip()
        if token not in self.tokens:
            raise HubError(401, "Invalid credentials in Authorization header")
        return self.tokens[token]

    def _require_write(self, user: tuple[str, str] | None) -> None:
        if user is None:
            raise HubError(401, "You must be authenticated to access this endpoint")
        if user[1] != "write":
            raise HubError(403, "You don't have the rights to write to this repository (read-only token)")
