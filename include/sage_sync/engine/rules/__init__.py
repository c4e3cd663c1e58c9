"""Business rules: one pure function per entity turns (Sage changes, SSM changes, state) into a plan."""

from __future__ import annotations
