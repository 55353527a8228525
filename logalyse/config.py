"""The configuration file: TOML, one flat table of keys, each also a flag and a variable.

Precedence, highest first: a command-line flag, the environment variable, the file, the
built-in default. `logalyse config show` prints the effective value of every key and
where it came from.

    # ~/.config/logalyse/config.toml
    db = "/var/lib/logalyse/logalyse.duckdb"
    geoip = "/usr/share/GeoIP/GeoLite2-Country.mmdb"
    sites = ["example.org", "blog.example.org"]
    tz = "Europe/Paris"
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]


@dataclass(frozen=True)
class Key:
    """One setting: its name in the file, its flag's parameter, its variable, its type."""

    name: str
    param: str  # the click parameter of the commands that take it
    envvar: str
    kind: type  # str, bool, int, float or list (of str)
    default: object
    help: str
    commands: tuple[str, ...] = ("import", "tail")  # "report" = every report


KEYS: tuple[Key, ...] = (
    Key("db", "db_path", "LOGALYSE_DB", str, None, "database file", ("*",)),
    Key(
        "keys_dir",
        "keys_dir",
        "LOGALYSE_KEYS_DIR",
        str,
        None,
        "directory of the day-key file (tmpfs)",
        ("*",),
    ),
    Key(
        "log_format",
        "log_format",
        "LOGALYSE_LOG_FORMAT",
        str,
        None,
        "log format (preset or nginx log_format)",
    ),
    Key("geoip", "geoip", "LOGALYSE_GEOIP", str, None, "City or Country .mmdb for countries"),
    Key("geoip_city", "geoip_city", "LOGALYSE_GEOIP_CITY", bool, False, "keep the city name"),
    Key(
        "geoip_url",
        "url",
        "LOGALYSE_GEOIP_URL",
        str,
        None,
        "where geoip update downloads from",
        ("geoip",),
    ),
    Key(
        "sites",
        "site",
        "LOGALYSE_SITES",
        list,
        [],
        "the site's own hosts",
        ("import", "tail", "enrich"),
    ),
    Key("tz", "tz", "LOGALYSE_TZ", str, "UTC", "time zone of days", ("import", "tail", "report")),
    Key("grace", "grace", "LOGALYSE_GRACE", str, "2h", "how long a day's key outlives the day"),
    Key(
        "keep_query",
        "keep_query",
        "LOGALYSE_KEEP_QUERY",
        list,
        [],
        "query keys kept besides utm_*, ref",
    ),
    Key(
        "asset_extensions",
        "asset_ext",
        "LOGALYSE_ASSET_EXT",
        list,
        [],
        "extra extensions that are not pages",
    ),
    Key(
        "non_pages", "non_page", "LOGALYSE_NON_PAGES", list, [], "extra paths that are never pages"
    ),
    Key(
        "max_hourly_pageviews",
        "max_hourly_pageviews",
        "LOGALYSE_MAX_HOURLY_PAGEVIEWS",
        int,
        120,
        "more pageviews in an hour: a machine",
        ("import", "tail", "enrich"),
    ),
    Key(
        "max_page_repeats",
        "max_page_repeats",
        "LOGALYSE_MAX_PAGE_REPEATS",
        int,
        20,
        "one page fetched more often, no asset: a machine",
        ("import", "tail", "enrich"),
    ),
    Key(
        "every",
        "every",
        "LOGALYSE_FLUSH",
        str,
        "5s",
        "how often tail stores what arrived",
        ("tail",),
    ),
    Key(
        "lock_timeout",
        "lock_timeout",
        "LOGALYSE_LOCK_TIMEOUT",
        float,
        10.0,
        "seconds to wait for a busy database",
    ),
    Key("gap", "gap", "LOGALYSE_GAP", str, "30m", "idle time that ends a session", ("report",)),
)
BY_NAME = {k.name: k for k in KEYS}


def default_path() -> Path:
    """`$LOGALYSE_CONFIG`, else `$XDG_CONFIG_HOME/logalyse/config.toml`."""
    env = os.environ.get("LOGALYSE_CONFIG")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "logalyse" / "config.toml"


def load(path: Path, *, required: bool = False) -> dict[str, Any]:
    """The file's settings, checked: unknown keys and wrong types are a ConfigError.

    A missing file is no settings (unless `required`: the user named it).

    Example:
        >>> import pathlib, tempfile
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "config.toml"
        >>> _ = p.write_text('tz = "Europe/Paris"\\nsites = ["example.org"]\\n')
        >>> load(p)
        {'tz': 'Europe/Paris', 'sites': ['example.org']}
    """
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise ConfigError(f"config file {path} does not exist") from None
        return {}
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from e
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from e
    out: dict[str, Any] = {}
    if "format" in data and "log_format" not in data:  # its name before 0.2
        data["log_format"] = data.pop("format")
    for name, value in data.items():
        key = BY_NAME.get(name)
        if key is None:
            raise ConfigError(f"{path}: unknown key {name!r}; known keys: {', '.join(BY_NAME)}")
        out[name] = _checked(path, key, value)
    return out


def _checked(path: Path, key: Key, value: object) -> object:
    if key.kind is list:
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        raise ConfigError(f"{path}: {key.name} must be a string or a list of strings")
    if key.kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if key.kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if key.kind is bool and isinstance(value, bool):
        return value
    if key.kind is str and isinstance(value, str):
        return value
    raise ConfigError(f"{path}: {key.name} must be a {key.kind.__name__}, not {value!r}")


@dataclass(frozen=True)
class Setting:
    key: str
    value: object
    origin: str  # "flag --db", "env LOGALYSE_TZ", "file PATH", "default"


def effective(
    file_values: dict[str, Any],
    file_path: Path,
    env: dict[str, str] | None = None,
    flags: dict[str, object] | None = None,
) -> list[Setting]:
    """Every key's value and where it came from (flag > env > file > default).

    Example:
        >>> s = effective({"tz": "Asia/Tokyo"}, Path("c.toml"), env={"LOGALYSE_GAP": "20m"})
        >>> [(x.value, x.origin) for x in s if x.key in ("tz", "gap", "grace")]
        [('Asia/Tokyo', 'file c.toml'), ('2h', 'default'), ('20m', 'env LOGALYSE_GAP')]
    """
    env = dict(os.environ) if env is None else env
    flags = flags or {}
    out = []
    for key in KEYS:
        if flags.get(key.name) is not None:
            out.append(Setting(key.name, flags[key.name], f"flag --{key.name}"))
        elif env.get(key.envvar):
            raw = env[key.envvar]
            value: object = raw.split() if key.kind is list else raw
            out.append(Setting(key.name, value, f"env {key.envvar}"))
        elif key.name in file_values:
            out.append(Setting(key.name, file_values[key.name], f"file {file_path}"))
        else:
            out.append(Setting(key.name, key.default, "default"))
    return out
