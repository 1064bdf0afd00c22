"""CLI commands for the Hugging Face Hub (push, pull, lock, list --hub); registered into ``zoo``."""

from __future__ import annotations

import argparse


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Hub commands are added here."""


def list_hub(args: argparse.Namespace) -> int:
    """``zoo list --hub ORG``: the org's modelzoo models on the Hub."""
    from .errors import ZooError

    raise ZooError("zoo list --hub is not available yet")
