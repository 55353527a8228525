"""nginx `log_format` strings: presets, and the compiler that turns one into a LogFormat.

A LogFormat is a sequence of literal text and variables, as nginx writes it.
This module only understands the format; turning it into SQL lives in `sql.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import FormatError

TIME_VARIABLES = ("time_local", "time_iso8601", "msec")
REQUEST_VARIABLES = ("request", "request_uri", "uri", "document_uri")

COMBINED = (
    '$remote_addr - $remote_user [$time_local] "$request" '
    '$status $body_bytes_sent "$http_referer" "$http_user_agent"'
)

#: Preset name -> nginx log_format string. `json` is special: see JSON_KEYS.
PRESETS: dict[str, str] = {
    "combined": COMBINED,
    "common": '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent',
    "vhost_combined": "$host " + COMBINED,
    # The `main` format of the official nginx Docker image: combined + X-Forwarded-For.
    "main": COMBINED + ' "$http_x_forwarded_for"',
    "json": "",
}
PRESET_ALIASES = {"combined_xff": "main", "vhost": "vhost_combined", "clf": "common"}

#: For the `json` preset: variable -> JSON keys it may be logged under, in order of preference.
JSON_KEYS: dict[str, tuple[str, ...]] = {
    "remote_addr": ("remote_addr", "remote_ip", "client_ip", "clientip", "ip", "client"),
    "http_x_forwarded_for": ("http_x_forwarded_for", "x_forwarded_for", "xff", "forwarded_for"),
    "time_iso8601": ("time_iso8601", "time", "timestamp", "@timestamp", "ts", "time_local"),
    "msec": ("msec",),
    "request": ("request",),
    "request_method": ("request_method", "method"),
    "request_uri": ("request_uri", "uri", "path", "url"),
    "server_protocol": ("server_protocol", "protocol"),
    "status": ("status", "status_code", "response"),
    "body_bytes_sent": ("body_bytes_sent", "bytes_sent", "bytes", "size"),
    "http_referer": ("http_referer", "http_referrer", "referer", "referrer"),
    "http_user_agent": ("http_user_agent", "user_agent", "agent", "ua"),
    "host": ("host", "http_host", "server_name", "vhost"),
    "http_dnt": ("http_dnt", "dnt"),
    "http_sec_gpc": ("http_sec_gpc", "sec_gpc", "gpc"),
}


@dataclass(frozen=True)
class Var:
    """A `$variable` in a log format."""

    name: str


Token = str | Var


@dataclass(frozen=True)
class LogFormat:
    """A compiled log format.

    Example:
        >>> fmt = compile_format('$remote_addr [$time_local] "$request" $status')
        >>> fmt.variables
        ('remote_addr', 'time_local', 'request', 'status')
    """

    name: str
    template: str
    tokens: tuple[Token, ...] = ()
    #: JSON mode: (variable, JSON keys to try) pairs; None for text formats.
    json_keys: tuple[tuple[str, tuple[str, ...]], ...] | None = None

    @property
    def variables(self) -> tuple[str, ...]:
        if self.json_keys is not None:
            return tuple(var for var, _ in self.json_keys)
        return tuple(t.name for t in self.tokens if isinstance(t, Var))

    @property
    def is_json(self) -> bool:
        return self.json_keys is not None

    def has(self, *names: str) -> bool:
        """True when the format logs any of these variables."""
        return any(n in self.variables for n in names)


_VAR_RE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
_CONF_PREFIX_RE = re.compile(r"^\s*log_format\s+\S+\s*((?:escape=\w+\s*)?)", re.DOTALL)
_QUOTED_RE = re.compile(r"""\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""", re.DOTALL)
_JSON_PAIR_RE = re.compile(r'"([^"\\]+)"\s*:\s*"?\$(?:\{(\w+)\}|(\w+))"?\s*[,}]')


def tokenize(template: str) -> tuple[Token, ...]:
    """Split a log format into literal strings and Vars, merging adjacent literals."""
    tokens: list[Token] = []
    pos = 0
    for m in _VAR_RE.finditer(template):
        if m.start() > pos:
            tokens.append(template[pos : m.start()])
        tokens.append(Var(m.group(1) or m.group(2)))
        pos = m.end()
    if pos < len(template):
        tokens.append(template[pos:])
    return tuple(tokens)


def unwrap_nginx_conf(text: str) -> tuple[str, bool]:
    """Accept a format pasted from nginx.conf, with or without `log_format name` and quotes.

    Returns the bare template and whether `escape=json` was given.

    Example:
        >>> unwrap_nginx_conf("log_format main '$remote_addr ' '[$time_local]';")
        ('$remote_addr [$time_local]', False)
    """
    s = text.strip()
    escape_json = False
    m = _CONF_PREFIX_RE.match(s)
    if m:
        escape_json = "escape=json" in m.group(1)
        s = s[m.end() :].strip()
        s = s.removesuffix(";").strip()
    elif s.endswith(";") and s[:1] in "'\"":
        s = s[:-1].strip()
    # Only treat it as nginx-quoted when the whole text is quoted segments.
    parts: list[str] = []
    pos = 0
    while pos < len(s):
        q = _QUOTED_RE.match(s, pos)
        if not q:
            break
        parts.append(q.group(1))
        pos = q.end()
    if parts and s[pos:].strip() == "":
        segs = []
        for p in parts:
            body = p[1:-1]
            segs.append(re.sub(r"\\(.)", r"\1", body))
        s = "".join(segs)
    return s, escape_json


def _json_format(name: str, template: str) -> LogFormat:
    pairs: dict[str, list[str]] = {}
    for m in _JSON_PAIR_RE.finditer(template):
        var = m.group(2) or m.group(3)
        pairs.setdefault(var, []).append(m.group(1))
    if not pairs:
        raise FormatError(f"JSON log format {template!r} maps no key to a $variable")
    keys = tuple((var, tuple(ks)) for var, ks in pairs.items())
    fmt = LogFormat(name=name, template=template, json_keys=keys)
    _check_required(fmt, template)
    return fmt


def _check_required(fmt: LogFormat, spec: str) -> None:
    missing = []
    if not fmt.has(*TIME_VARIABLES):
        missing.append("a time ($time_local, $time_iso8601 or $msec)")
    if not fmt.has("status"):
        missing.append("$status")
    if not fmt.has(*REQUEST_VARIABLES):
        missing.append("the request ($request or $request_uri)")
    if missing:
        raise FormatError(
            f"log format {spec!r} lacks {', '.join(missing)}: logalyse needs them to count visits"
        )


def compile_format(spec: str, name: str = "custom") -> LogFormat:
    """Compile a preset name or an nginx `log_format` string.

    Raises FormatError for an unknown preset, variables with no text between them
    (nginx output could not be split), or a format without time, status and request.

    Example:
        >>> compile_format("combined").name
        'combined'
    """
    key = spec.strip().lower()
    key = PRESET_ALIASES.get(key, key)
    if key in PRESETS:
        if key == "json":
            keys = tuple((var, ks) for var, ks in JSON_KEYS.items())
            return LogFormat(name="json", template="", json_keys=keys)
        return compile_format(PRESETS[key], name=key)
    if "$" not in spec:
        raise FormatError(
            f"unknown format {spec!r}: use a preset ({', '.join(PRESETS)}) "
            "or an nginx log_format string such as '$remote_addr [$time_local] ...'"
        )
    template, escape_json = unwrap_nginx_conf(spec)
    if escape_json or template.lstrip().startswith("{"):
        return _json_format(name, template)
    tokens = tokenize(template)
    for a, b in zip(tokens, tokens[1:], strict=False):
        if isinstance(a, Var) and isinstance(b, Var):
            raise FormatError(
                f"log format {spec!r} has ${a.name} and ${b.name} with nothing between them, "
                "so their values cannot be told apart"
            )
    fmt = LogFormat(name=name, template=template, tokens=tokens)
    _check_required(fmt, spec)
    return fmt
