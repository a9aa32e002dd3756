"""Errors of the case store. Each message is a sentence a person can act on."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of the store's own errors (lookups raise :class:`LookupError`, bad values ValueError)."""


class NotACaseError(StoreError):
    """A folder that is not a geodesk case folder (no ``case.db``)."""


class NewerSchemaError(StoreError):
    """The case was written by a newer geodesk: its schema has migrations this version does not know."""


class MigrationError(StoreError):
    """A schema migration failed; its changes were rolled back."""


class AlreadyExistsError(StoreError, ValueError):
    """Adding something whose identity is already taken (same evidence SHA-256, same turn index...)."""


class SettingsError(StoreError, ValueError):
    """``settings.json`` cannot be read as geodesk settings."""
