"""``python -m sage_sync.simulators.ssm``: the simulator's command line."""

from __future__ import annotations

from sage_sync.simulators.ssm.cli import app

if __name__ == "__main__":
    app()
