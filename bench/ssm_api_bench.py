"""SSM API benchmark: the simulator and SalesManagementHook together, rate limit lifted.

    .venv/bin/python bench/ssm_api_bench.py [--runs 5] [--accounts 10000]

Starts the simulator (``python -m sage_sync.simulators.ssm serve --rate-limit 0 --admin``) on a free 127.0.0.1
port, then per run: resets the tenant, creates ``--accounts`` accounts with ``bulk_create`` (chunks of 200), and
lists them back with ``list_all`` at page size 1000, once page by page and once with ``prefetch=True`` (the next
page is requested while the current one is decoded). Prints one JSON object with the median records per second of
each phase over the runs (after one untimed warm-up run). Progress goes to stderr.
Targets (issue 3): >= 2,000 records/s bulk writes, >= 20,000 records/s list reads.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

TARGET_WRITES_PER_S = 2_000
TARGET_READS_PER_S = 20_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_simulator(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    cmd = [
        sys.executable, "-m", "sage_sync.simulators.ssm", "serve",
        "--host", "127.0.0.1", "--port", str(port), "--db", str(workdir / "ssm.sqlite"),
        "--rate-limit", "0", "--admin",
    ]  # fmt: skip
    log = (workdir / "simulator.log").open("wb")
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    root = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise SystemExit(
                f"the simulator exited with {process.returncode}; see {workdir / 'simulator.log'}"
            )
        try:
            requests.get(f"{root}/__sim/keys", timeout=2)
            return process, root
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                process.terminate()
                raise SystemExit("the simulator did not answer within 30 s") from None
            time.sleep(0.05)


def _one_run(root: str, accounts: int) -> dict[str, Any]:
    from sage_sync.hooks.ssm import SalesManagementHook

    keys = requests.post(f"{root}/__sim/reset", timeout=60).json()
    key = keys["integration"]
    os.environ["AIRFLOW_CONN_SSM_BENCH"] = json.dumps(
        {
            "conn_type": "http",
            "host": f"{root}/api/v4",
            "login": key["public_key"],
            "password": key["private_key"],
            "extra": {"requests_per_second": 0, "page_size": 1000},
        }
    )
    hook = SalesManagementHook("ssm_bench")
    hook.test_connection()  # log in outside the timed part
    items = [
        {"name": f"Société {n}", "branchId": 1, "salesRepId1": 1, "extId": f"B{n:07d}", "city": "Lyon"}
        for n in range(accounts)
    ]
    start = time.perf_counter()
    outcomes = hook.bulk_create("accounts", items)
    write_s = time.perf_counter() - start
    if sum(o.ok for o in outcomes) != accounts:
        raise SystemExit("bulk_create did not create every account")
    read_s: dict[bool, float] = {}
    for prefetch in (False, True):
        start = time.perf_counter()
        listed = hook.list_all("accounts", page_size=1000, prefetch=prefetch)
        read_s[prefetch] = time.perf_counter() - start
        if len(listed) != accounts:
            raise SystemExit(f"list_all returned {len(listed)} accounts, expected {accounts}")
    hook.close()
    return {
        "writes_per_s": accounts / write_s,
        "reads_per_s": accounts / read_s[False],
        "prefetch_reads_per_s": accounts / read_s[True],
        "api_calls": hook.calls.as_dict(),  # the whole run: login, bulk writes, both listings
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one JSON object."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="Timed runs (after one warm-up run); default 5.")
    parser.add_argument("--accounts", type=int, default=10_000, help="Accounts created and listed per run.")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.accounts < 1:
        parser.error("--runs and --accounts must be at least 1")

    with tempfile.TemporaryDirectory(prefix="ssm-bench-") as tmp:
        process, root = _start_simulator(Path(tmp))
        try:
            print(f"simulator at {root}; warm-up run ...", file=sys.stderr)
            _one_run(root, min(args.accounts, 2_000))
            runs = []
            for n in range(args.runs):
                result = _one_run(root, args.accounts)
                runs.append(result)
                print(
                    f"run {n + 1}/{args.runs}: {result['writes_per_s']:,.0f} writes/s, "
                    f"{result['reads_per_s']:,.0f} reads/s ({result['prefetch_reads_per_s']:,.0f} with prefetch)",
                    file=sys.stderr,
                )
        finally:
            process.terminate()
            process.wait(timeout=10)

    writes = statistics.median(r["writes_per_s"] for r in runs)
    reads = statistics.median(r["reads_per_s"] for r in runs)
    prefetch_reads = statistics.median(r["prefetch_reads_per_s"] for r in runs)
    print(
        json.dumps(
            {
                "benchmark": "ssm_api",
                "runs": args.runs,
                "accounts_per_run": args.accounts,
                "bulk_create_records_per_s_median": round(writes),
                "list_records_per_s_median": round(reads),
                "bulk_create_records_per_s_runs": [round(r["writes_per_s"]) for r in runs],
                "list_records_per_s_runs": [round(r["reads_per_s"]) for r in runs],
                "list_prefetch_records_per_s_median": round(prefetch_reads),
                "list_prefetch_records_per_s_runs": [round(r["prefetch_reads_per_s"]) for r in runs],
                "load_average_1min": round(os.getloadavg()[0], 2),
                "page_size": 1000,
                "bulk_chunk": 200,
                "api_calls_per_run": runs[-1]["api_calls"],
                "targets": {
                    "bulk_create_records_per_s": TARGET_WRITES_PER_S,
                    "list_records_per_s": TARGET_READS_PER_S,
                },
                "meets_targets": writes >= TARGET_WRITES_PER_S and reads >= TARGET_READS_PER_S,
                "meets_targets_with_prefetch": writes >= TARGET_WRITES_PER_S
                and prefetch_reads >= TARGET_READS_PER_S,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
