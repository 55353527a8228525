"""Shared fixtures: paths to real test data, a CLI runner, a store in a temp dir."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from logalyse.store import Store

ROOT = Path(__file__).parent.parent
SAMPLE_LOGS = ROOT / "sample_logs"
DATA = Path(__file__).parent / "data"
LOGS = DATA / "logs"
FIXTURES = DATA / "fixtures"

IPV4 = re.compile(rb"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
ADDRESS_TOKEN = re.compile(rb"[0-9A-Fa-f:.]{7,45}")
_CLIENT = re.compile(rb"^(?:[\w.-]+\s+\|\s+)?(?:\S+T\S+\s)?([0-9A-Fa-f:.]+)\s", re.M)


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
