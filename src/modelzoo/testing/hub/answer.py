"""What a route hands back to the HTTP layer: an :class:`Answer`, or a raised :class:`HubError`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class HubError(Exception):
    """An HTTP error answer: status, optional X-Error-Code, and a message (X-Error-Message + JSON)."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


@dataclass
class FileBody:
    path: Path
    offset: int
    length: int


@dataclass
class Answer:
    status: int = 200
    body: Any = None  # dict/list -> JSON, bytes, FileBody, or None
    headers: dict[str, str] = field(default_factory=dict)
