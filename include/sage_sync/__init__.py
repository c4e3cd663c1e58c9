"""Synchronise a Sage 50 FR accounting dossier with Sage Sales Management (API v4)."""

__version__ = "0.1.0"
