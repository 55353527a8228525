"""`make bench` (part 3): memory of `logalyse tail -` over a long stream.

Feeds the bench log into `logalyse tail -` through a pipe at a steady rate and samples
the tail process's RSS, so that growth over time shows. All enrichment is on (GeoIP
too). Prints RSS after the first minute, at the end and at its peak, and the lines
stored.

    python bench/bench_tail.py [--minutes 3] [--rate 1000] [--geoip PATH]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from bench import default_geoip, ensure_log  # noqa: E402


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def anonymous_mib(pid: int) -> float:
    """The part of the RSS that is the process's own (heap, DuckDB's buffers): the rest is
    code and data mapped from files (DuckDB's library alone is ~33-45 MiB of it), which
    the kernel shares and can drop and read again under memory pressure."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Anonymous:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(
    minutes: float, rate: int, geoip: Path | None
) -> tuple[int, int, list[tuple[float, float, float]]]:
    """Feed `tail -` for `minutes` at `rate` lines/s; (lines sent, stored, samples of
    (seconds, RSS, its anonymous part))."""
    total = int(minutes * 60 * rate)
    # Never fed twice: a stream that goes back in time is a replay, which tail skips.
    log = ensure_log(max(1_000_000, -(-total // 1000) * 1000))
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "tail.duckdb"
        cmd = [sys.executable, "-m", "logalyse", "--db", str(db), "tail", "-q", "--every", "5s"]
        if geoip:
            cmd += ["--geoip", str(geoip)]
        proc = subprocess.Popen([*cmd, "-"], stdin=subprocess.PIPE)
        assert proc.stdin is not None
        samples: list[tuple[float, float, float]] = []
        done = threading.Event()

        def sample() -> None:
            start = time.monotonic()
            while not done.wait(2.0):
                try:
                    at = time.monotonic() - start
                    samples.append((at, rss_mib(proc.pid), anonymous_mib(proc.pid)))
                except OSError:
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        start = time.monotonic()
        sent = 0
        with open(log, "rb") as f:
            while sent < total:
                chunk = [x for x in (f.readline() for _ in range(rate // 10)) if x]
                if not chunk:
                    break
                proc.stdin.write(b"".join(chunk))
                proc.stdin.flush()
                sent += len(chunk)
                pause = start + sent / rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
        proc.stdin.close()
        proc.wait()
        done.set()
        import duckdb

        con = duckdb.connect(str(db), read_only=True)
        stored = con.execute("SELECT count(*) FROM requests").fetchone()[0]  # type: ignore[index]
        con.close()
    return sent, stored, samples


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--rate", type=int, default=1000, help="lines per second fed")
    ap.add_argument("--geoip", type=Path, default=None)
    args = ap.parse_args()
    sent, stored, samples = measure(args.minutes, args.rate, args.geoip or default_geoip())
    first_min = [r for t, r, _ in samples if t <= 60] or [0.0]
    print()
    print(f"| tail - ({args.minutes:g} min at {args.rate:,} lines/s, flush every 5 s) | value |")
    print("|---|---|")
    print(f"| lines fed / stored | {sent:,} / {stored:,} |")
    print(f"| RSS after 1 min (MiB) | {first_min[-1]:.0f} |")
    print(f"| RSS at the end (MiB) | {samples[-1][1] if samples else 0:.0f} |")
    print(f"| peak RSS (MiB) | {max((r for _, r, _ in samples), default=0):.0f} |")
    print(f"| of which anonymous, at the end (MiB) | {samples[-1][2] if samples else 0:.0f} |")
    by_minute = {}
    for t, r, _ in samples:
        by_minute[int(t // 60) + 1] = r
    print(
        "| RSS at the end of each minute (MiB) | "
        + " ".join(f"{r:.0f}" for r in by_minute.values())
        + " |"
    )


if __name__ == "__main__":
    main()
