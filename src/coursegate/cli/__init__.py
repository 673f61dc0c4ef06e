"""The `coursegate` command (see `main` for the core commands, `inbound` for providers and signing)."""

from coursegate.cli.main import app, main

__all__ = ["app", "main"]
