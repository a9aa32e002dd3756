"""Subcommands of geodesk-train, one module each."""
