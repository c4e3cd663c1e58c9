"""Start the simulator on uvicorn (one process, one event loop: requests are handled one at a time)."""

from __future__ import annotations

import uvicorn

from sage_sync.simulators.ssm.app import API, Settings, Simulator


def banner(sim: Simulator, host: str, port: int) -> str:
    """The start-up text: base URL, the seeded demo keys and users of this local simulator."""
    keys = sim.keys_json()
    lines = [
        f"Sage Sales Management API v4 simulator: http://{host}:{port}{API}",
        f"  database: {sim.settings.db_path}",
        f"  rate limit: {sim.settings.rate_limit:g} requests/s per key (0 = unlimited); token lifetime: {sim.settings.token_ttl:g} s",
        f"  admin endpoints /__sim/: {'enabled' if sim.settings.admin else 'disabled'}",
        # These are the simulator's own deterministic demo keys (derived from --seed), not real credentials.
        f"  integration key: public={keys['integration']['public_key']} private={keys['integration']['private_key']}"
        f" (user {keys['integration']['user_id']})",
        f"  user key:        public={keys['user']['public_key']} private={keys['user']['private_key']}"
        f" (user {keys['user']['user_id']})",
        "  users:",
    ]
    for user in keys["users"]:
        admin = " (admin)" if user["isAdmin"] else ""
        lines.append(f"    {user['id']}: {user['name']} {user['lastName']} <{user['email']}>{admin}")
    return "\n".join(lines)


def serve(settings: Settings, host: str, port: int) -> None:
    """Serve until interrupted."""
    sim = Simulator(settings)
    print(banner(sim, host, port), flush=True)
    config = uvicorn.Config(
        sim,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_keep_alive=30,
    )
    uvicorn.Server(config).run()
