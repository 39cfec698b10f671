"""Size and cost of a recording: ``pgtop --record`` on a throwaway server with a load.

Run it from the repository root::

    python benchmarks/recording.py                    # 500 idle sessions, 1 s, 3 minutes
    python benchmarks/recording.py --active 8 --chain 3 --idle-in-tx 1   # a busier server
    python benchmarks/recording.py --minutes 1 --idle 5000

It starts a throwaway cluster of the system's PostgreSQL (``pgtop.cluster.start_cluster``,
deleted at the end) with ``pg_stat_statements``, opens the sessions with ``load.py hold``
(idle ones ran ``SELECT 1`` once and stay idle), then runs ``pgtop --record FILE --refresh 1
--duration N`` as a user would, in its own process, and reports:

* the file's size per minute of recording (every tab recorded at its cadence: Activity and
  Locks every second, Queries every 5 s, the catalog tabs every 10 s; a keyframe each
  minute), and what the flight recorder's memory would hold for 30 minutes;
* the recorder's CPU time, as a share of one core;
* opening the recording and ``--once activity --at`` its middle (a replay).

Target: well under 1 MB per minute with 500 idle sessions at a 1 s refresh.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from tempfile import TemporaryDirectory

from pgtop.cluster import Cluster, start_cluster, system_bindir

HERE = Path(__file__).resolve().parent


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def pgtop(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pgtop", *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        stdin=subprocess.DEVNULL,
    )


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--idle", type=int, default=500)
    parser.add_argument("--active", type=int, default=0)
    parser.add_argument("--chain", type=int, default=0)
    parser.add_argument("--idle-in-tx", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--refresh", type=float, default=1.0)
    args = parser.parse_args(argv)

    bindir = system_bindir()
    if bindir is None:
        say("no system PostgreSQL found (apt install postgresql-15)")
        return 1
    connections = args.idle + args.active + args.chain + args.idle_in_tx + 40
    cluster: Cluster = start_cluster(
        bindir,
        settings={"max_connections": str(connections), "pg_stat_statements.track": "top"},
        name="pgtop-bench",
    )
    load = None
    try:
        cluster.psql("CREATE DATABASE bench")
        cluster.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", dbname="bench")
        dsn = cluster.conninfo("bench")
        subprocess.run(
            [sys.executable, str(HERE / "load.py"), "setup", "--dsn", dsn, "--tables", "100"],
            check=True,
        )
        say(f"opening {args.idle} idle, {args.active} active sessions, chain {args.chain}")
        load = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "load.py"),
                "hold",
                "--dsn",
                dsn,
                "--idle",
                str(args.idle),
                "--active",
                str(args.active),
                "--chain",
                str(args.chain),
                "--idle-in-tx",
                str(args.idle_in_tx),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert load.stdout is not None
        if not load.stdout.readline().startswith("ready"):
            say("the load generator failed")
            return 1
        with TemporaryDirectory(prefix="pgtop-bench-rec-") as tmp:
            env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
            env["PGTOP_CONFIG"] = str(Path(tmp) / "none.toml")
            env["PGTOP_LOG_DIR"] = str(Path(tmp) / "logs")
            path = Path(tmp) / "bench.pgtop"
            seconds = args.minutes * 60
            say(f"recording for {seconds:g}s at a {args.refresh:g}s refresh")
            cpu_before, started = children_cpu(), time.monotonic()
            done = pgtop(
                "--record", str(path), "--refresh", f"{args.refresh:g}",
                "--duration", f"{seconds:g}", dsn,
                env=env,
            )  # fmt: skip
            elapsed, cpu = time.monotonic() - started, children_cpu() - cpu_before
            say(done.stderr.strip())
            size = path.stat().st_size
            info = json.loads(
                pgtop("--replay", str(path), "--info", "--format", "json", env=env).stdout
            )
            recorded_minutes = info["seconds"] / 60
            middle = datetime.fromisoformat(info["first"]).timestamp() + info["seconds"] / 2
            at = datetime.fromtimestamp(middle).astimezone().isoformat()
            replay_started = time.monotonic()
            shown = pgtop("--replay", str(path), "--once", "activity", "--at", at, env=env)
            replay_seconds = time.monotonic() - replay_started
            per_minute = size / recorded_minutes
            print(
                json.dumps(
                    {
                        "sessions": {
                            "idle": args.idle,
                            "active": args.active,
                            "chain": args.chain,
                            "idle_in_tx": args.idle_in_tx,
                        },
                        "refresh_seconds": args.refresh,
                        "readings": info["readings"],
                        "tabs": info["tabs"],
                        "recorded_seconds": round(info["seconds"], 1),
                        "file_bytes": size,
                        "bytes_per_minute": round(per_minute),
                        "memory_30_minutes_bytes": round(per_minute * 30),
                        "recorder_cpu_share_of_one_core": round(cpu / elapsed, 3),
                        "replay_once_at_middle_seconds": round(replay_seconds, 2),
                        "rows_at_middle": shown.stdout.count("\n") - 1,
                    },
                    indent=2,
                )
            )
            say(
                f"{size / 1024:.0f} KiB for {recorded_minutes:.1f} min: "
                f"{per_minute / 1024:.1f} KiB per minute"
            )
    finally:
        if load is not None:
            load.terminate()
            load.wait(30)
        cluster.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
