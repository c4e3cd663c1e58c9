"""Adapters connecting the sync engine's sides (:mod:`sage_sync.engine.sides`) to the real systems' hooks."""
