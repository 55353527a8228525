"""Every report in every output format on the demo store, byte for byte against
tests/golden/<report>.<format>: the output formats are a public interface, and a refactor
that changes no output proves it here.

After a change meant to alter output: `pytest tests/test_golden.py --update-golden`, then
review the files' diff like any other change.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from logalyse.cli import REPORT_HELP, cli
from logalyse.render import FORMATS

from .conftest import clean_env

GOLDEN = Path(__file__).parent / "golden"
#: The sample logs' days, spelled out: "all" or "7d" would make the output depend on today.
SCOPE = ["--since", "2026-11-01", "--until", "2026-11-04", "--tz", "UTC", "--limit", "10"]
#: Files in GOLDEN that are not outputs.
NOT_OUTPUTS = {".gitattributes"}


def golden_path(name: str, fmt: str) -> Path:
    return GOLDEN / f"{name}.{fmt}"


def _diff(expected: bytes, actual: bytes, path: Path) -> str:
    lines = difflib.unified_diff(
        expected.decode("utf-8", "backslashreplace").splitlines(keepends=True),
        actual.decode("utf-8", "backslashreplace").splitlines(keepends=True),
        fromfile=str(path.relative_to(GOLDEN.parent.parent)),
        tofile="this run",
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", list(REPORT_HELP))
def test_report_output_is_its_golden_file(
    demo_db: Path, name: str, fmt: str, request: pytest.FixtureRequest
) -> None:
    # The table's width: 120 columns, as in any pipe (CliRunner's stdout is no terminal).
    runner = CliRunner(env=clean_env())
    result = runner.invoke(cli, ["--db", str(demo_db), "report", name, *SCOPE, "--format", fmt])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    out = result.stdout_bytes
    # What must never be in a golden file, whether it is being compared or written.
    assert b"\x1b" not in out
    assert str(demo_db.parent).encode() not in out
    if fmt == "json":
        json.loads(out)
    path = golden_path(name, fmt)
    if request.config.getoption("--update-golden"):
        if not path.exists() or path.read_bytes() != out:
            GOLDEN.mkdir(exist_ok=True)
            path.write_bytes(out)
        return
    if not path.exists():
        pytest.fail(f"{path} is missing: run pytest with --update-golden", pytrace=False)
    expected = path.read_bytes()
    if out != expected:
        pytest.fail(
            f"`logalyse report {name} --format {fmt}` differs from its golden file "
            f"(pytest --update-golden rewrites it):\n{_diff(expected, out, path)}",
            pytrace=False,
        )


def test_golden_files_are_one_per_report_and_format(request: pytest.FixtureRequest) -> None:
    """A report renamed or removed leaves no golden file behind to mislead."""
    wanted = {golden_path(n, f).name for n in REPORT_HELP for f in FORMATS}
    extra = {p.name for p in GOLDEN.iterdir()} - wanted - NOT_OUTPUTS
    if request.config.getoption("--update-golden"):
        for name in extra:
            (GOLDEN / name).unlink()
        return
    assert not extra, f"golden files of no report: {sorted(extra)} (--update-golden removes them)"
