"""The model errors every layer shares: one ``ModelNotFoundError`` for the registry, the services and
the CLI (a light module: catching it imports neither the registry nor a backend)."""

from __future__ import annotations


class RegistryError(Exception):
    """A registry operation cannot be done; the message says what to do instead."""


class ModelNotFoundError(RegistryError, LookupError):
    """A model reference names no installed model, no model folder and no usable endpoint; the
    message says what to do."""
