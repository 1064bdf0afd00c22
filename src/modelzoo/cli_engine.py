"""CLI commands of the fine-tune engine (finetune, eval, predict); registered into ``zoo``."""

from __future__ import annotations

import argparse


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Engine commands are added here as the engine lands."""
