"""Reports as data for scripts: JSON, CSV and TSV, with raw values (no bars, no
thousands separators); nested records are flattened for CSV. Tables are in `table`."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

from ..formats.escape import printable
from ..model import Report

_C1 = re.compile("[\x7f-\x9f]")


def _plain(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def render_json(reports: Sequence[Report], out: IO[str]) -> None:
    """One report: a list of row objects (one object for overview); several: an object of
    them by section name."""

    def one(r: Report) -> Any:
        records = [{k: _plain(v) for k, v in rec.items()} for rec in r.records()]
        return records[0] if r.single else records

    doc = one(reports[0]) if len(reports) == 1 else {r.name: one(r) for r in reports}
    # json escapes C0 controls; DEL and C1 (U+0080-U+009F: a terminal reads U+009B as CSI)
    # are escaped too, so that the JSON says "\u009b" and a terminal never sees one.
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    out.write(_C1.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text))
    out.write("\n")


def _flat(record: dict[str, object]) -> dict[str, object]:
    """{"previous": {"requests": 1}} -> {"previous_requests": 1}: CSV has no nesting."""
    out: dict[str, object] = {}
    for k, v in record.items():
        if isinstance(v, dict):
            out.update({f"{k}_{kk}": vv for kk, vv in v.items()})
        else:
            out[k] = v
    return out


def render_delimited(reports: Sequence[Report], out: IO[str], delimiter: str) -> None:
    """CSV/TSV: a header of column keys, then rows; sections apart, each after a
    `# name` line. Text from logs has its control characters made visible."""
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    for n, report in enumerate(reports):
        records = [_flat(rec) for rec in report.records()]
        if len(reports) > 1:
            if n:
                out.write("\n")
            out.write(f"# {report.name}\n")
        keys = list(records[0]) if records else [c.key for c in report.columns if c.kind != "bar"]
        writer.writerow(keys)
        for rec in records:
            writer.writerow(
                [
                    ""
                    if v is None
                    else printable(str(_plain(v)))
                    if isinstance(v, str)
                    else _plain(v)
                    for v in rec.values()
                ]
            )
