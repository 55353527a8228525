"""Packaging and layering promises that are easy to break without noticing."""

from __future__ import annotations

import re
import subprocess
import sys

from click.testing import CliRunner

from logalyse.cli import cli

from .conftest import ROOT


def test_library_import_leaves_cli_libraries_out() -> None:
    code = (
        "import sys, logalyse; from logalyse import Store, ingest, compile_format; "
        "print(sorted(m for m in ('click', 'rich') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_help_starts_without_heavy_imports() -> None:
    code = (
        "import sys; from logalyse.cli import cli; "
        "print(sorted(m for m in ('duckdb', 'pyarrow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_python_dash_m_runs_the_cli() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "logalyse", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "Usage:" in out.stdout


def test_every_command_has_help_and_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    runner = CliRunner()
    for name, command in cli.commands.items():
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, name
        assert command.help, name
        assert re.search(rf"logalyse (--db \S+ )?{name}\b", readme), (
            f"README does not show `logalyse {name}`"
        )


def test_readme_states_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
