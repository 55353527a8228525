"""Errors that logalyse raises, and the exit codes the CLI maps them to.

The library raises only these (never click exceptions, never sys.exit); cli.py
turns them into messages and exit codes in one place.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, listed in `logalyse --help`."""

    OK = 0
    ERROR = 1
    USAGE = 2
    MOSTLY_MALFORMED = 3
    LOCKED = 4
    DOWNLOAD = 5
    INTERRUPTED = 130


class LogalyseError(Exception):
    """Base class: a failure with a message meant for the user."""

    exit_code: ExitCode = ExitCode.ERROR


class FormatError(LogalyseError):
    """A log format string (or preset name) that cannot be compiled."""

    exit_code = ExitCode.USAGE


class SourceError(LogalyseError):
    """An input path or stream that cannot be read."""


class MostlyMalformedError(LogalyseError):
    """Most lines of an input did not parse: almost surely the wrong format."""

    exit_code = ExitCode.MOSTLY_MALFORMED


class StoreError(LogalyseError):
    """The DuckDB store cannot be opened, migrated or written."""


class StoreLockedError(StoreError):
    """Another process holds the store (or the import lock) for too long."""

    exit_code = ExitCode.LOCKED


class KeyFileError(LogalyseError):
    """The day-key file is unreadable, corrupt or has unsafe permissions."""


class GeoError(LogalyseError):
    """A GeoIP database that is missing, corrupt or of the wrong kind."""


class ConfigError(LogalyseError):
    """An invalid option or configuration value."""

    exit_code = ExitCode.USAGE
