"""Shared fixtures: paths to real test data, a CLI runner, a store in a temp dir, the demo
store (`make demo`'s), `--update-golden`, and `wait_for` (a condition with a deadline)."""

from __future__ import annotations

import ipaddress
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from logalyse.cli import cli
from logalyse.store import Store

ROOT = Path(__file__).parent.parent
SAMPLE_LOGS = ROOT / "sample_logs"
DATA = Path(__file__).parent / "data"
LOGS = DATA / "logs"
FIXTURES = DATA / "fixtures"
GEOIP_TEST_DB = DATA / "maxmind" / "GeoIP2-City-Test.mmdb"

IPV4 = re.compile(rb"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
ADDRESS_TOKEN = re.compile(rb"[0-9A-Fa-f:.]{7,45}")
_CLIENT = re.compile(rb"^(?:[\w.-]+\s+\|\s+)?(?:\S+T\S+\s)?([0-9A-Fa-f:.]+)\s", re.M)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="Rewrite tests/golden/ from the current output instead of comparing with it.",
    )


def fuzz_examples(n: int) -> int:
    """Hypothesis examples for a slow property: `n` in `make test`, LOGALYSE_FUZZ times
    more in `make fuzz`."""
    return n * int(os.environ.get("LOGALYSE_FUZZ", "1"))


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "db" / "logalyse.duckdb"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    with Store(db_path) as s:
        yield s


@pytest.fixture(autouse=True)
def _no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the developer's own database or config."""
    monkeypatch.delenv("LOGALYSE_DB", raising=False)
    monkeypatch.delenv("LOGALYSE_FORMAT", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))


def clean_env(**extra: str) -> dict[str, str | None]:
    """A CliRunner `env`: no LOGALYSE_* setting and nothing that makes rich draw colour or
    pick a width of its own, from the developer's shell."""
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("LOGALYSE_")}
    for name in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS"):
        env[name] = None
    env["TERM"] = "unknown"  # as the Makefile sets it
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store `make demo` makes: the sample logs imported with MaxMind's test database,
    the docker compose stream piped in, then both again (which imports nothing). Read only,
    please: every test of the session shares it."""
    tmp = tmp_path_factory.mktemp("demo")
    db = tmp / "logalyse.duckdb"
    runner = CliRunner(
        env=clean_env(XDG_DATA_HOME=str(tmp / "xdg-data"), XDG_CONFIG_HOME=str(tmp / "xdg-config"))
    )
    files = [str(p) for p in sorted(SAMPLE_LOGS.glob("access.log*"))]
    stream = (SAMPLE_LOGS / "docker-compose.log").read_bytes()
    geoip = ["--geoip", str(GEOIP_TEST_DB)]
    for again in (False, True):
        for args, stdin in (([*geoip, *files], None), ([*geoip, "-"], stream)):
            r = runner.invoke(cli, ["--db", str(db), "import", *args], input=stdin)
            assert r.exit_code == 0, r.output
            assert ("imported 0 lines" in r.stderr) == again, r.stderr
    return db


def wait_for(check: Callable[[], object], timeout: float = 30.0, what: str = "") -> None:
    """Poll `check` until it returns something true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        time.sleep(0.05)


def rows(store: Store, sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    return store.query(sql, params)


def count(store: Store, where: str = "TRUE") -> int:
    return int(store.query(f"SELECT count(*) FROM requests WHERE {where}")[0][0])


def client_addresses(data: bytes) -> set[bytes]:
    """The client address of every access line (the first field, after a docker prefix)."""
    out = set()
    for m in _CLIENT.finditer(data):
        try:
            ipaddress.ip_address(m.group(1).decode())
        except ValueError:
            continue
        out.add(m.group(1))
    return out


def addresses_in(path: Path, wanted: set[bytes]) -> set[bytes]:
    """Which of `wanted` appear as text anywhere in a file (for privacy scans)."""
    return wanted & set(ADDRESS_TOKEN.findall(path.read_bytes()))


def files_under(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()]


def env_without(*names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}
