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

import math
import re
from dataclasses import dataclass, field
from typing import Any

try:
    import tomllib
except ImportError:  # Python 3.10 (ansible-core 2.16 and 2.17 controllers); the agent falls back the same way
    try:
        import tomli as tomllib
    except ImportError as error:
        tomllib = None
        TOMLLIB_IMPORT_ERROR: ImportError | None = error
    else:
        TOMLLIB_IMPORT_ERROR = None
else:
    TOMLLIB_IMPORT_ERROR = None

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


CAPABILITY_TABLES = (("capabilities", "amounts"), ("capabilities", "attributes"))


def stray_key_effect(path: tuple[str, ...]) -> str:
    """What the agent does with a known key assigned in the table at ``path`` instead of its own:
    no known key is a valid capability name, so in a capability table it stops the agent."""
    if tuple(path) in CAPABILITY_TABLES:
        return "refuses to start (it is not a valid capability name)"
    return "ignores it"


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


def _utf8_error(data: bytes) -> UnicodeDecodeError:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        return error
    raise ValueError("the bytes are valid UTF-8")


def decode_config(data: bytes, path: str = CONFIG_PATH) -> DecodedConfig:
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            text = data[3:].decode("utf-8")
        except UnicodeDecodeError:
            # tomllib decodes the whole file before it parses: bad bytes behind the BOM are the error
            return DecodedConfig("invalid", None, str(_utf8_error(data)))
        return DecodedConfig("utf-8-bom", text, f"Configuration file ({path}) is not valid TOML: Invalid statement (at line 1, column 1)")
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


def lone_carriage_returns(text: str) -> str | None:
    """What TOML refuses in the line endings of ``text`` (a carriage return must be followed by a line
    feed), said as an operator would look for it; None when they are LF or CRLF. tomllib only says
    where it stops ("Expected newline ... (at line 1, column 9)"), which points nowhere useful."""
    lone = next((i for i, ch in enumerate(text) if ch == "\r" and text[i + 1 : i + 2] != "\n"), None)
    if lone is None:
        return None
    if "\n" not in text:
        return "CR-only line endings (each line ends in a carriage return alone, as on classic Mac OS)"
    return f"a carriage return without a line feed at line {text.count(chr(10), 0, lone) + 1}"


class TomlParserMissing(RuntimeError):
    """Python 3.10 without tomli: worker.toml cannot be read as the agent reads it."""


def parse_toml(text: str) -> tuple[dict | None, ParseError | None]:
    """The document as tomllib (the agent's parser) reads it, or where it stops."""
    if tomllib is None:
        raise TomlParserMissing(
            f"reading worker.toml on Python 3.10 needs the Python package tomli on the controller ({TOMLLIB_IMPORT_ERROR}): "
            "pip install -r requirements.txt from the collection"
        )
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

    # (location, message) as pydantic v1 renders them ("os -> run_jobs_as_agent_user"), in the
    # order the models validate: the agent refuses to start when there is any
    problems: list[tuple[str, str]] = field(default_factory=list)
    misplaced: list[tuple[str, str, str]] = field(default_factory=list)  # (key, found in, belongs in)

    @property
    def errors(self) -> list[str]:
        return [f"{location}: {message}" for location, message in self.problems]

    @property
    def agent_accepts(self) -> bool:
        return not self.problems


# ConfigFile's sections in its field order (pydantic reports errors in that order); telemetry is optional.
SECTIONS = ("worker", "aws", "logging", "os", "capabilities", "telemetry")

# pydantic v1's messages (pydantic/v1/errors.py), as the agent's ConfigurationError shows them.
NOT_A_DICT = "value is not a valid dict"
NOT_A_LIST = "value is not a valid list"
NOT_A_STR = "str type expected"
NOT_A_BOOL = "value could not be parsed to a boolean"
NOT_A_FLOAT = "value is not a valid float"
NOT_A_PATH = "value is not a valid path"
REQUIRED = "field required"


def as_mapping(value: Any) -> dict | None:
    """A value where pydantic v1 wants a dict or a model: a dict, or what ``dict(value)`` makes of it
    (an array of two-item arrays, or of two-character strings, is one); None when it refuses."""
    if isinstance(value, dict):
        return value
    try:
        return dict(value)
    except (TypeError, ValueError):
        return None


def agent_section(document: dict | None, table: str) -> dict | None:
    """A top-level section of the file as the agent's model reads it (None when absent or refused)."""
    if not isinstance(document, dict) or table not in document:
        return None
    return as_mapping(document[table])


def _str_value(value: Any, strict: bool) -> str | None:
    """pydantic v1's str_validator: numbers (bools too, being ints) become their str(); strict takes str only."""
    if isinstance(value, str):
        return value
    if not strict and isinstance(value, (int, float)):
        return str(value)
    return None


def agent_value_error(known: KnownKey, value: Any) -> str | None:
    """Why the agent refuses ``value`` for ``known``, with pydantic v1's coercions; None if it takes it."""
    if known.kind == "bool":
        return None if as_bool(value) is not None else NOT_A_BOOL
    if known.kind == "float":
        return None if as_float(value) is not None else NOT_A_FLOAT
    if known.kind == "path":
        return None if isinstance(value, str) else NOT_A_PATH
    if known.kind == "enum":
        if isinstance(value, str) and value in known.choices:
            return None
        return f"value is not a valid enumeration member; permitted: {', '.join(repr(c) for c in known.choices)}"
    if known.kind not in ("str", "strict_str"):  # pragma: no cover - the table above only uses the kinds handled here
        raise ValueError(known.kind)
    text = _str_value(value, strict=known.kind == "strict_str")
    if text is None:
        return NOT_A_STR
    if known.key in ("profile", "region") and not text:
        return "ensure this value has at least 1 characters"
    if known.max_length is not None and len(text) > known.max_length:
        return f"ensure this value has at most {known.max_length} characters"
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


# ---------------------------------------------------------------------------------------------
# Capabilities: the agent's Capabilities model (deadline_worker_agent/capabilities.py) with
# openjd-model's capability-name rules (openjd/model/_capabilities.py, v2023_09 standard names).

_CAPABILITY_NAME = re.compile(r"^(?:[a-z_][a-z0-9_]+:)?(?:amount|attr)(?:\.[a-z_][a-z0-9_]*)+$")
_RESERVED_SCOPES = ("worker", "job", "step", "task")
STANDARD_CAPABILITIES = {
    "amount.": ("amount.worker.vcpu", "amount.worker.memory", "amount.worker.gpu", "amount.worker.gpu.memory", "amount.worker.disk.scratch"),
    "attr.": ("attr.worker.os.family", "attr.worker.cpu.arch"),
}


def capability_name_error(name: Any, prefix: str) -> str | None:
    """Why the agent refuses ``name`` as an amount (``amount.``) or attribute (``attr.``) capability name."""
    if not isinstance(name, str):
        return f"Capability names must be strings. -- {name}"
    if not name:
        return "Capability names cannot be the empty string."
    if len(name) > 100:
        return f"Capability names must not exceed 100 characters in length. '{name}' is {len(name)} characters long."
    lowered = name.lower()
    if _CAPABILITY_NAME.fullmatch(lowered) is None:
        return f"Value is not a valid Capability name: {lowered}"
    vendor, capability = lowered.split(":", 1) if ":" in lowered else ("", lowered)
    if not vendor and capability in STANDARD_CAPABILITIES[prefix]:
        return None
    if not capability.startswith(prefix):
        return f"Capability name after the vendor prefix must start with '{prefix}': {lowered}"
    scope = lowered.split(".")[1]
    if scope in _RESERVED_SCOPES:
        return f"Only Open Job Description defined capabilities may start with '{prefix}{scope}': {lowered}"
    return None


def _check_capability_table(value: Any, where: str, prefix: str, problems: list[tuple[str, str]]) -> None:
    table = as_mapping(value)
    if table is None:
        problems.append((where, NOT_A_DICT))
        return
    for name, item in table.items():
        name_error = capability_name_error(name, prefix)
        if name_error:
            problems.append((f"{where} -> __key__", name_error))
            continue
        if prefix == "amount.":  # NonNegativeFloat
            amount = as_float(item)
            if amount is None:
                problems.append((f"{where} -> {name}", NOT_A_FLOAT))
            elif math.isnan(amount) or amount < 0:  # pydantic's ge=0 refuses nan too
                problems.append((f"{where} -> {name}", "ensure this value is greater than or equal to 0"))
            continue
        if not isinstance(item, list):  # list[str]: TOML has no other sequence
            problems.append((f"{where} -> {name}", NOT_A_LIST))
            continue
        for index, label in enumerate(item):
            if _str_value(label, strict=False) is None:
                problems.append((f"{where} -> {name} -> {index}", NOT_A_STR))


def _check_capabilities(value: dict, problems: list[tuple[str, str]]) -> None:
    for part, prefix in (("amounts", "amount."), ("attributes", "attr.")):
        if part not in value:
            problems.append((f"capabilities -> {part}", REQUIRED))
        else:
            _check_capability_table(value[part], f"capabilities -> {part}", prefix, problems)


def capabilities_problems(value: dict) -> list[tuple[str, str]]:
    """What the agent's Capabilities model refuses in ``value`` (a [capabilities] table, or the JSON of
    DEADLINE_WORKER_CAPABILITIES), each as (``capabilities -> amounts -> __key__``, message)."""
    problems: list[tuple[str, str]] = []
    _check_capabilities(value, problems)
    return problems


def _find_misplaced(document: dict, report: SchemaReport) -> None:
    def walk(table: dict, where: tuple[str, ...]) -> None:
        for key, value in table.items():
            if isinstance(value, dict):
                if (*where, key) not in CAPABILITY_TABLES:  # capability names are the farm's own
                    walk(value, (*where, key))
                continue
            known = KNOWN_KEYS.get(key)
            location = ".".join(where)
            if known is not None and location != known.table:
                report.misplaced.append((key, location or "(top level)", known.table))

    walk(document, ())


def check_document(document: dict) -> SchemaReport:
    """Everything the agent's ConfigFile model would refuse in ``document`` (in pydantic's order and
    words), and known keys in a table where the agent does not read them."""
    report = SchemaReport()
    for table in SECTIONS:
        if table not in document:
            if table in REQUIRED_TABLES:
                report.problems.append((table, REQUIRED))
            continue
        section = as_mapping(document[table])
        if section is None:
            report.problems.append((table, NOT_A_DICT))
            continue
        if table == "capabilities":
            _check_capabilities(section, report.problems)
            continue
        # A pre root validator: when it refuses, pydantic checks none of the section's fields.
        removed = [message for (t, key), message in REMOVED_KEYS.items() if t == table and key in section]
        if removed:
            report.problems.extend((f"{table} -> __root__", message) for message in removed)
            continue
        for known in KNOWN_KEYS.values():
            if known.table == table and known.key in section:
                problem = agent_value_error(known, section[known.key])
                if problem:
                    report.problems.append((f"{table} -> {known.key}", problem))
    _find_misplaced(document, report)
    return report


def as_float(value: Any) -> float | None:
    """pydantic v1's float_validator: float(value) (bools, numeric strings, "nan" and "inf" included)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def as_bool(value: Any) -> bool | None:
    """A value the agent reads as a bool (file or environment), as pydantic v1's bool_validator:
    true/false, the words, and numbers equal to 1 or 0 (1.0 too)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        value = value.lower()
    try:
        if value in TRUE_WORDS or (isinstance(value, (int, float)) and value == 1):
            return True
        if value in FALSE_WORDS or (isinstance(value, (int, float)) and value == 0):
            return False
    except TypeError:  # unhashable: an array or a table
        return None
    return None


def agent_value(known: KnownKey, value: Any) -> Any:
    """``value`` as the agent loads it for ``known`` (pydantic v1 coercion); None if it refuses it."""
    if agent_value_error(known, value) is not None:
        return None
    if known.kind == "bool":
        return as_bool(value)
    if known.kind == "float":
        return as_float(value)
    if known.kind in ("str", "strict_str"):
        return _str_value(value, strict=False)
    return value
