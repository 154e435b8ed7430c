# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the Deadline Cloud worker agent reads worker.toml: bytes, TOML, tables, keys and types.

Written from the agent's own loader (``ConfigFile.load`` with pydantic v1 models, release
0.33.6, and the 0.27 models before it); see domain/WORKER-AGENT.md sections 2.3 to 2.5 and 9.
This is the one place that knows the agent's schema: worker_toml validates against it, the
findings of worker_agent_info and the simulated worker's restart verdict are built on it.

Internal to this collection: not a public API; it may change in any release.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

CONFIG_PATH = r"C:\ProgramData\Amazon\Deadline\Config\worker.toml"
REQUIRED_TABLES = ("worker", "aws", "logging", "os", "capabilities")

# pydantic v1's bool parsing, which the agent applies to file values and environment variables.
TRUE_WORDS = frozenset({"1", "on", "t", "true", "y", "yes"})
FALSE_WORDS = frozenset({"0", "off", "f", "false", "n", "no"})


@dataclass(frozen=True)
class KnownKey:
    table: str
    key: str
    kind: str  # bool | str | strict_str | path | float | enum
    pattern: str | None = None
    choices: tuple[str, ...] = ()
    max_length: int | None = None
    # True where every agent release reads the key from this table (section 8 of the notes):
    # the key anywhere else is certainly ignored. Keys whose table moved between releases only warn.
    table_is_stable: bool = False

    @property
    def name(self) -> str:
        return f"[{self.table}] {self.key}"


def _keys(*keys: KnownKey) -> dict[str, KnownKey]:
    return {k.key: k for k in keys}


KNOWN_KEYS: dict[str, KnownKey] = _keys(
    KnownKey("worker", "farm_id", "str", pattern=r"^farm-[a-z0-9]{32}$", table_is_stable=True),
    KnownKey("worker", "fleet_id", "str", pattern=r"^fleet-[a-z0-9]{32}$", table_is_stable=True),
    KnownKey("worker", "cleanup_session_user_processes", "bool"),
    KnownKey("worker", "worker_persistence_dir", "path"),
    KnownKey("worker", "session_root_dir", "path"),
    KnownKey("worker", "session_runtime", "enum", choices=("python", "rust", "service-selected")),
    KnownKey("aws", "profile", "str", max_length=64, table_is_stable=True),
    KnownKey("aws", "allow_ec2_instance_profile", "bool", table_is_stable=True),
    KnownKey("aws", "region", "str"),
    KnownKey("logging", "verbose", "bool", table_is_stable=True),
    KnownKey("logging", "worker_logs_dir", "path", table_is_stable=True),
    KnownKey("logging", "local_session_logs", "bool", table_is_stable=True),
    KnownKey("logging", "host_metrics_logging", "bool"),
    KnownKey("logging", "host_metrics_logging_interval_seconds", "float"),
    KnownKey("logging", "structured_logs", "bool", table_is_stable=True),
    KnownKey("os", "run_jobs_as_agent_user", "bool", table_is_stable=True),
    KnownKey("os", "posix_job_user", "str", pattern=r"^[a-zA-Z0-9_.][^:]{0,31}:[a-zA-Z0-9_.][^:]{0,31}$", table_is_stable=True),
    KnownKey("os", "shutdown_on_stop", "bool", table_is_stable=True),
    KnownKey("os", "retain_session_dir", "bool", table_is_stable=True),
    KnownKey("os", "windows_job_user", "strict_str", pattern=r"^.{1,512}$", table_is_stable=True),
    KnownKey(
        "os",
        "windows_job_user_password_arn",
        "strict_str",
        pattern=r"^arn:aws:secretsmanager:[a-z0-9\-]+:\d{12}:secret[:/][a-zA-Z0-9/_+=.@:-]+$",
    ),
    KnownKey("telemetry", "opt_out", "bool"),
    KnownKey(
        "telemetry",
        "identifier",
        "str",
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
    ),
)
# Removed in 0.18.0; every later agent refuses to start when it is present under [os].
REMOVED_KEYS = {("os", "impersonation"): "The 'impersonation' option has been removed. Please use 'run_jobs_as_agent_user' instead."}
KNOWN_TABLES = frozenset({*REQUIRED_TABLES, "telemetry"})


def known_key(table: str, key: str) -> KnownKey | None:
    known = KNOWN_KEYS.get(key)
    return known if known is not None and known.table == table else None


# ---------------------------------------------------------------------------------------------
# bytes -> text: the agent opens the file in binary and tomllib decodes strict UTF-8.


@dataclass(frozen=True)
class DecodedConfig:
    encoding: str  # utf-8 | utf-8-bom | utf-16 | invalid
    text: str | None  # the text as an editor would read it (BOM removed), None when undecodable
    agent_error: str | None  # what the agent says about these bytes, None when it reads them

    @property
    def agent_reads_bytes(self) -> bool:
        return self.agent_error is None


def decode_config(data: bytes, path: str = CONFIG_PATH) -> DecodedConfig:
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            text = data[3:].decode("utf-8")
        except UnicodeDecodeError:
            text = None
        return DecodedConfig(
            "utf-8-bom" if text is not None else "invalid",
            text,
            f"Configuration file ({path}) is not valid TOML: Invalid statement (at line 1, column 1)",
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            text = None
        return DecodedConfig(
            "utf-16" if text is not None else "invalid",
            text,
            f"'utf-8' codec can't decode byte 0x{data[0]:02x} in position 0: invalid start byte",
        )
    try:
        return DecodedConfig("utf-8", data.decode("utf-8"), None)
    except UnicodeDecodeError as error:
        return DecodedConfig("invalid", None, str(error))


# ---------------------------------------------------------------------------------------------
# text -> TOML


@dataclass(frozen=True)
class ParseError:
    message: str
    line: int | None
    column: int | None


_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


def parse_toml(text: str) -> tuple[dict | None, ParseError | None]:
    """The document as tomllib (the agent's parser) reads it, or where it stops."""
    try:
        return tomllib.loads(text), None
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        line = getattr(error, "lineno", None)
        column = getattr(error, "colno", None)
        match = _POSITION.search(message)
        if match and line is None:
            line, column = int(match.group(1)), int(match.group(2))
        return None, ParseError(message, line, column)


# ---------------------------------------------------------------------------------------------
# TOML -> what the agent accepts


@dataclass
class SchemaReport:
    """What the agent's models say about a parsed worker.toml."""

    errors: list[str] = field(default_factory=list)  # the agent refuses to start
    misplaced: list[tuple[str, str, str]] = field(default_factory=list)  # (key, found in, belongs in)

    @property
    def agent_accepts(self) -> bool:
        return not self.errors


def agent_value_error(known: KnownKey, value: Any) -> str | None:
    """Why the agent refuses ``value`` for ``known``, with pydantic v1's coercions; None if it takes it."""
    if known.kind == "bool":
        if isinstance(value, bool):
            return None
        if isinstance(value, int) and value in (0, 1):
            return None
        if isinstance(value, str) and value.lower() in TRUE_WORDS | FALSE_WORDS:
            return None
        return "value could not be parsed to a boolean"
    if known.kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            return "value is not a valid float"
        try:
            float(value)
        except ValueError:
            return "value is not a valid float"
        return None
    if known.kind in ("str", "path", "enum"):
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            return "str type expected"
        text = str(value)
    elif known.kind == "strict_str":
        if not isinstance(value, str):
            return "str type expected"
        text = value
    else:  # pragma: no cover - the table above only uses the kinds handled here
        raise ValueError(known.kind)
    if known.kind == "enum" and text not in known.choices:
        return f"value is not a valid enumeration member; permitted: {', '.join(repr(c) for c in known.choices)}"
    if known.max_length is not None and not 1 <= len(text) <= known.max_length:
        return f"ensure this value has between 1 and {known.max_length} characters"
    if known.key == "profile" and not text:
        return "ensure this value has at least 1 characters"
    if known.key == "region" and not text:
        return "ensure this value has at least 1 characters"
    if known.pattern and not re.match(known.pattern, text):
        return f'string does not match regex "{known.pattern}"'
    return None


def write_type_error(known: KnownKey, value: Any) -> str | None:
    """Why ``value`` is not the agent's own type for ``known`` (stricter than what it coerces)."""
    expected = {"bool": bool, "float": (int, float), "str": str, "path": str, "enum": str, "strict_str": str}[known.kind]
    wanted = {"bool": "boolean", "float": "number"}.get(known.kind, "string")
    if isinstance(value, bool) and known.kind != "bool":
        return f"{known.name} takes a {wanted}, not a boolean"
    if not isinstance(value, expected):
        return f"{known.name} takes a {wanted}, not {type(value).__name__} {value!r}"
    return agent_value_error(known, value)


def _check_capabilities(value: Any, errors: list[str]) -> None:
    if not isinstance(value, dict):
        errors.append("capabilities: value is not a valid dict")
        return
    for part in ("amounts", "attributes"):
        if part not in value:
            errors.append(f"capabilities -> {part}: field required")
        elif not isinstance(value[part], dict):
            errors.append(f"capabilities -> {part}: value is not a valid dict")


def _find_misplaced(document: dict, report: SchemaReport) -> None:
    def walk(table: dict, where: tuple[str, ...]) -> None:
        for key, value in table.items():
            if isinstance(value, dict):
                if where and where[0] == "capabilities":
                    continue  # capability names are the farm's own
                walk(value, (*where, key))
                continue
            known = KNOWN_KEYS.get(key)
            location = ".".join(where)
            if known is not None and location != known.table:
                report.misplaced.append((key, location or "(top level)", known.table))

    walk(document, ())


def check_document(document: dict) -> SchemaReport:
    """Everything the agent's ConfigFile model would refuse in ``document``, and misplaced keys."""
    report = SchemaReport()
    for table in REQUIRED_TABLES:
        if table not in document:
            report.errors.append(f"{table}: field required")
    for table, value in document.items():
        if table not in KNOWN_TABLES:
            continue  # ignored by the agent
        if table == "capabilities":
            _check_capabilities(value, report.errors)
            continue
        if not isinstance(value, dict):
            report.errors.append(f"{table}: value is not a valid dict")
            continue
        for (removed_table, removed_key), message in REMOVED_KEYS.items():
            if table == removed_table and removed_key in value:
                report.errors.append(f"{table} -> __root__: {message}")
        for key, item in value.items():
            known = known_key(table, key)
            if known is None:
                continue
            problem = agent_value_error(known, item)
            if problem:
                report.errors.append(f"{table} -> {key}: {problem}")
    _find_misplaced(document, report)
    return report


def as_bool(value: Any) -> bool | None:
    """A value the agent reads as a bool (file or environment), as pydantic v1 parses it."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    return None


def agent_value(known: KnownKey, value: Any) -> Any:
    """``value`` as the agent loads it for ``known`` (pydantic v1 coercion); None if it refuses it."""
    if agent_value_error(known, value) is not None:
        return None
    if known.kind == "bool":
        return as_bool(value)
    if known.kind == "float":
        return float(value)
    if known.kind in ("str", "path", "enum") and not isinstance(value, str):
        return str(value)
    return value
