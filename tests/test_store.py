"""The store's tables: declared once (`store.tables`), and an old store migrated to them."""

from __future__ import annotations

from pathlib import Path

import duckdb

from logalyse.store import SCHEMA_VERSION, TABLES, Store
from logalyse.store.migrations import MIGRATIONS


def _columns(con: duckdb.DuckDBPyConnection, database: str) -> dict[str, list[tuple[str, str]]]:
    rows = con.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = ? ORDER BY table_name, column_index",
        [database],
    ).fetchall()
    out: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in rows:
        out.setdefault(table, []).append((column, kind))
    return out


def test_a_new_store_is_made_as_declared(tmp_path: Path) -> None:
    with Store(tmp_path / "new.duckdb") as store, store.attached() as con:
        made = _columns(con, "db")
        assert store.schema_version() == SCHEMA_VERSION
    declared = {t: [(c.name, c.type.split()[0]) for c in cols] for t, cols in TABLES.items()}
    assert made == declared


def test_a_version_1_store_migrates_to_the_declared_tables(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    for stmt in MIGRATIONS[1]:
        assert isinstance(stmt, str)
        con.execute(stmt)
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.close()
    with Store(path) as store, store.attached() as con2:
        migrated = _columns(con2, "db")
        assert store.schema_version() == SCHEMA_VERSION
    with Store(tmp_path / "new.duckdb") as store, store.attached() as con3:
        assert migrated == _columns(con3, "db")
