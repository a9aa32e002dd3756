"""Use cases that combine the store, evidence, engine and geo layers (cases, locate, batch, export, replay).

Qt-free: the CLI and the desktop app both call these.
"""
