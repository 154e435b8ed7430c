# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The agent's decisions about a worker: its settings, whether it starts, and the findings.

Written from the agent's source (``config/settings.py``, ``config/config.py``,
``startup/entrypoint.py``, ``windows/win_service.py``, ``scheduler/scheduler.py``, release
0.33.6) and domain/WORKER-AGENT.md. The simulated worker's restart verdict and
worker_agent_info's findings are both taken from here, so the two never disagree.

A *reading* is what ``read_agent_info`` returns from a host (the same shape from PowerShell and
from the simulated worker); :func:`describe` turns it into worker_agent_info's result.

Internal to this collection: not a public API; it may change in any release.
"""

from __future__ import annotations

import base64
import datetime
import re
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils import user_rights
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils.accounts import (
    ADMINISTRATORS,
    parse_account,
    same_account_by_name,
)
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils.agent_config import (
    CONFIG_PATH,
    KNOWN_KEYS,
    REMOVED_KEYS,
    DecodedConfig,
    KnownKey,
    ParseError,
    SchemaReport,
    agent_value,
    agent_value_error,
    as_bool,
    check_document,
    decode_config,
    parse_toml,
)
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils.user_rights import held_rights

SERVICE_LOGON_RIGHT = "SeServiceLogonRight"
SHUTDOWN_PRIVILEGE = "SeShutdownPrivilege"
DEFAULT_SERVICE = "DeadlineWorker"
LOG_PATH = r"C:\ProgramData\Amazon\Deadline\Logs\worker-agent.log"

OPT_IN_VARIABLE = "DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER"
JOB_USER_VARIABLE = "DEADLINE_WORKER_WINDOWS_JOB_USER"
MACHINE_ENVIRONMENT_KEY = r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Environment"

# The scheduler's text since 0.24.0 (scheduler.py), and 0.23.0's before it (section 1.2).
ADMIN_MESSAGE = "Job cannot run as WORKER_AGENT_USER. Worker Agent is running with Administrator privileges."
ADMIN_MESSAGE_0_23 = "Job cannot run as WORKER_AGENT_USER as it has administrator privileges."
# config.py Configuration._validate
JOB_USER_CONFLICT_ERROR = (
    "Cannot specify a windows job user when the option to run jobs as the agent user is enabled."
)
# What the Service Control Manager reports when the account lacks "Log on as a service" (ERROR_SERVICE_LOGON_FAILED).
SERVICE_LOGON_ERROR = "The service did not start due to a logon failure."

MINIMUM_VERSION = (0, 27, 3)
OPT_IN_SINCE = (0, 27, 2)
CHECK_SINCE = (0, 23, 0)
CHECK_MESSAGE_SINCE = (0, 24, 0)

SEVERITIES = ("blocker", "security", "warning", "info")


# ---------------------------------------------------------------------------------------------
# The environment the service process sees


@dataclass(frozen=True)
class EnvironmentValue:
    name: str
    value: str
    source: str  # machine | service

    @property
    def where(self) -> str:
        if self.source == "service":
            return "the service's own Environment value"
        return f"the machine environment ({MACHINE_ENVIRONMENT_KEY})"


def _split_service_environment(entries: list[str] | None) -> dict[str, str]:
    values: dict[str, str] = {}
    for entry in entries or []:
        name, sep, value = str(entry).partition("=")
        if sep and name:
            values[name] = value
    return values


def service_environment(machine: dict[str, str] | None, service_entries: list[str] | None) -> dict[str, EnvironmentValue]:
    """What the service process sees: machine variables, overridden by the service's own values.

    Windows compares variable names case-insensitively; keys here are upper case.
    """
    seen: dict[str, EnvironmentValue] = {}
    for name, value in (machine or {}).items():
        seen[name.upper()] = EnvironmentValue(name, str(value), "machine")
    for name, value in _split_service_environment(service_entries).items():
        seen[name.upper()] = EnvironmentValue(name, value, "service")
    return seen


def all_definitions(machine: dict[str, str] | None, service_entries: list[str] | None, variable: str) -> list[EnvironmentValue]:
    """Every place ``variable`` is defined, so a fix names each one (removing one may reveal the other)."""
    found = [EnvironmentValue(n, str(v), "machine") for n, v in (machine or {}).items() if n.upper() == variable]
    found += [
        EnvironmentValue(n, v, "service")
        for n, v in _split_service_environment(service_entries).items()
        if n.upper() == variable
    ]
    return found


# The settings the agent reads from environment variables (WorkerSettings.Config.fields), with
# the file key whose rules they share. Capabilities (JSON) are not checked here.
_BOOL = KnownKey("settings", "bool", "bool")
ENVIRONMENT_SETTINGS: dict[str, tuple[str, KnownKey]] = {
    "DEADLINE_WORKER_FARM_ID": ("farm_id", KNOWN_KEYS["farm_id"]),
    "DEADLINE_WORKER_FLEET_ID": ("fleet_id", KNOWN_KEYS["fleet_id"]),
    "DEADLINE_WORKER_CLEANUP_SESSION_USER_PROCESSES": ("cleanup_session_user_processes", _BOOL),
    "DEADLINE_WORKER_PROFILE": ("profile", KNOWN_KEYS["profile"]),
    "DEADLINE_WORKER_VERBOSE": ("verbose", _BOOL),
    "DEADLINE_WORKER_NO_SHUTDOWN": ("no_shutdown", _BOOL),
    OPT_IN_VARIABLE: ("run_jobs_as_agent_user", _BOOL),
    "DEADLINE_WORKER_POSIX_JOB_USER": ("posix_job_user", KNOWN_KEYS["posix_job_user"]),
    # WorkerSettings types it str (not StrictStr), with the file's pattern.
    JOB_USER_VARIABLE: ("windows_job_user", KnownKey("os", "windows_job_user", "str", pattern=r"^.{1,512}$")),
    "DEADLINE_WORKER_WINDOWS_JOB_USER_PASSWORD_ARN": (
        "windows_job_user_password_arn",
        KnownKey("os", "windows_job_user_password_arn", "str", pattern=KNOWN_KEYS["windows_job_user_password_arn"].pattern),
    ),
    "DEADLINE_WORKER_ALLOW_INSTANCE_PROFILE": ("allow_instance_profile", _BOOL),
    "DEADLINE_WORKER_LOCAL_SESSION_LOGS": ("local_session_logs", _BOOL),
    "DEADLINE_WORKER_HOST_METRICS_LOGGING": ("host_metrics_logging", _BOOL),
    "DEADLINE_WORKER_HOST_METRICS_LOGGING_INTERVAL_SECONDS": (
        "host_metrics_logging_interval_seconds",
        KNOWN_KEYS["host_metrics_logging_interval_seconds"],
    ),
    "DEADLINE_WORKER_RETAIN_SESSION_DIR": ("retain_session_dir", _BOOL),
    "DEADLINE_WORKER_STRUCTURED_LOGS": ("structured_logs", _BOOL),
    "DEADLINE_CLOUD_TELEMETRY_OPT_OUT": ("telemetry_opt_out", _BOOL),
}


def is_agent_variable(name: str) -> bool:
    upper = name.upper()
    return upper.startswith("DEADLINE_WORKER_") or upper in ENVIRONMENT_SETTINGS


# ---------------------------------------------------------------------------------------------
# Settings, resolved as WorkerSettings does: CLI > environment > file > default


@dataclass(frozen=True)
class ResolvedSetting:
    name: str
    value: Any
    source: str  # default | file | machine | service   (never cli: the service passes cli_args=[])
    variable: str | None = None

    def as_dict(self) -> dict:
        return {"value": self.value, "source": self.source, "variable": self.variable}


def _file_setting(document: dict | None, table: str, key: str) -> Any:
    if not isinstance(document, dict):
        return None
    section = document.get(table)
    if not isinstance(section, dict) or key not in section:
        return None
    known = KNOWN_KEYS.get(key)
    value = section[key]
    if known is not None and known.table == table:
        return agent_value(known, value)
    return value


def resolve_setting(
    setting: str, variable: str, file_value: Any, default: Any, environment: dict[str, EnvironmentValue]
) -> ResolvedSetting:
    env = environment.get(variable)
    if env is not None:
        _name, known = ENVIRONMENT_SETTINGS[variable]
        value: Any = as_bool(env.value) if known.kind == "bool" else env.value
        return ResolvedSetting(setting, value, env.source, env.name)
    if file_value is not None:
        return ResolvedSetting(setting, file_value, "file")
    return ResolvedSetting(setting, default, "default")


@dataclass(frozen=True)
class AgentSettings:
    run_jobs_as_agent_user: ResolvedSetting
    windows_job_user: ResolvedSetting
    shutdown_on_stop: ResolvedSetting

    def as_dict(self) -> dict:
        return {
            "run_jobs_as_agent_user": self.run_jobs_as_agent_user.as_dict(),
            "windows_job_user": self.windows_job_user.as_dict(),
            "shutdown_on_stop": self.shutdown_on_stop.as_dict(),
        }


def resolve_settings(document: dict | None, environment: dict[str, EnvironmentValue]) -> AgentSettings:
    """The opt-in, the job user and shutdown as the service's agent resolves them."""
    opt_in = resolve_setting(
        "run_jobs_as_agent_user", OPT_IN_VARIABLE, _file_setting(document, "os", "run_jobs_as_agent_user"), False, environment
    )
    job_user = resolve_setting(
        "windows_job_user", JOB_USER_VARIABLE, _file_setting(document, "os", "windows_job_user"), None, environment
    )
    # The agent keeps no_shutdown = not shutdown_on_stop; DEADLINE_WORKER_NO_SHUTDOWN overrides the file.
    file_shutdown = _file_setting(document, "os", "shutdown_on_stop")
    no_shutdown = environment.get("DEADLINE_WORKER_NO_SHUTDOWN")
    if no_shutdown is not None and as_bool(no_shutdown.value) is not None:
        shutdown = ResolvedSetting("shutdown_on_stop", not as_bool(no_shutdown.value), no_shutdown.source, no_shutdown.name)
    elif file_shutdown is not None:
        shutdown = ResolvedSetting("shutdown_on_stop", file_shutdown, "file")
    else:
        shutdown = ResolvedSetting("shutdown_on_stop", None, "default")
    return AgentSettings(opt_in, job_user, shutdown)


# ---------------------------------------------------------------------------------------------
# Does the agent start? (entrypoint -> Configuration.load -> WorkerSettings -> ConfigFile.load)


@dataclass
class ConfigAnalysis:
    path: str
    exists: bool
    decoded: DecodedConfig | None = None
    document: dict | None = None
    parse_error: ParseError | None = None
    schema: SchemaReport | None = None

    @property
    def encoding(self) -> str | None:
        return self.decoded.encoding if self.decoded else None


def analyse_config(data: bytes | None, path: str = CONFIG_PATH) -> ConfigAnalysis:
    """Everything about the bytes: encoding, TOML, the agent's schema. Keeps going past a BOM or
    UTF-16 (which the agent refuses) so that the findings also name what lies behind them."""
    if data is None:
        return ConfigAnalysis(path, False)
    analysis = ConfigAnalysis(path, True, decode_config(data, path))
    if analysis.decoded is not None and analysis.decoded.text is not None:
        analysis.document, analysis.parse_error = parse_toml(analysis.decoded.text)
        if analysis.document is not None:
            analysis.schema = check_document(analysis.document)
    return analysis


def _pydantic_errors(title: str, errors: list[tuple[str, str]]) -> str:
    count = len(errors)
    lines = [f"{count} validation error{'s' if count != 1 else ''} for {title}"]
    for location, message in errors:
        lines += [location, f"  {message}"]
    return "\n".join(lines)


@dataclass(frozen=True)
class StartupVerdict:
    starts: bool
    error: str | None = None  # the agent's own text (or the Service Control Manager's)
    stage: str | None = None  # logon | encoding | toml | config_file | settings | validate

    def as_dict(self) -> dict:
        return {"starts": self.starts, "error": self.error, "stage": self.stage}


def _settings_errors(analysis: ConfigAnalysis, environment: dict[str, EnvironmentValue]) -> list[tuple[str, str]]:
    """What WorkerSettings' own validation refuses: environment values, and ids missing everywhere."""
    errors: list[tuple[str, str]] = []
    for variable, (setting, known) in ENVIRONMENT_SETTINGS.items():
        env = environment.get(variable)
        if env is None:
            continue
        problem = agent_value_error(known, env.value)
        if problem:
            errors.append((setting, problem))
    for key in ("farm_id", "fleet_id"):
        if environment.get(f"DEADLINE_WORKER_{key.upper()}") is None and _file_setting(analysis.document, "worker", key) is None:
            errors.append((key, "field required"))
    order = {name: i for i, (name, _k) in enumerate(ENVIRONMENT_SETTINGS.values())}
    return sorted(errors, key=lambda e: order.get(e[0], 0))


def startup_verdict(
    data: bytes | None,
    environment: dict[str, EnvironmentValue],
    *,
    path: str = CONFIG_PATH,
    can_log_on_as_service: bool = True,
    service_account: str | None = None,
) -> StartupVerdict:
    """Whether the agent, started by its service now, gets past its configuration, and if not
    the error it stops with (entrypoint writes ``ERROR: <text>`` to stderr and exits 1)."""
    if not can_log_on_as_service:
        return StartupVerdict(False, SERVICE_LOGON_ERROR, "logon")
    analysis = analyse_config(data, path)
    return _verdict_from_analysis(analysis, environment, service_account)


def _verdict_from_analysis(
    analysis: ConfigAnalysis, environment: dict[str, EnvironmentValue], service_account: str | None
) -> StartupVerdict:
    if analysis.exists:
        decoded = analysis.decoded
        if decoded is None:
            raise ValueError("an existing config was analysed without its decoding")
        if decoded.agent_error is not None:
            return StartupVerdict(False, decoded.agent_error, "encoding")
        if analysis.parse_error is not None:
            return StartupVerdict(
                False, f"Configuration file ({analysis.path}) is not valid TOML: {analysis.parse_error.message}", "toml"
            )
        if analysis.schema is None:
            raise ValueError("a parsed config was analysed without its schema report")
        if analysis.schema.errors:
            errors = [tuple(e.split(": ", 1)) for e in analysis.schema.errors]
            return StartupVerdict(
                False,
                f"Parsing errors loading configuration file ({analysis.path}):\n" + _pydantic_errors("ConfigFile", errors),
                "config_file",
            )
    # A missing file is not an error to the agent: WorkerSettings then reads only the environment.
    settings_errors = _settings_errors(analysis, environment)
    if settings_errors:
        text = "Configuration is not valid. Validation errors:\n\n" + "".join(f"{loc}: {msg}\n" for loc, msg in settings_errors)
        return StartupVerdict(False, text, "settings")
    settings = resolve_settings(analysis.document, environment)
    job_user = settings.windows_job_user.value
    if job_user is not None:
        # Configuration.__init__ on Windows checks the job user before _validate runs.
        if service_account and same_account_by_name(job_user, service_account):
            return StartupVerdict(
                False,
                f"Windows job user override must not be the user running the worker agent: {parse_account(service_account).name}."
                " If you wish to run jobs as the agent user, set run_jobs_as_agent_user = true in the agent configuration file.",
                "job_user",
            )
        # The agent's own is_domain_user (windows/win_user.py): a backslash or an @ makes a domain user.
        if ("\\" in job_user or "@" in job_user) and _password_arn(analysis.document, environment) is None:
            return StartupVerdict(
                False,
                f"Domain user '{job_user}' requires 'windows_job_user_password_arn' to be set. Domain user passwords"
                " must be managed externally via Secrets Manager.",
                "job_user",
            )
        if settings.run_jobs_as_agent_user.value:
            return StartupVerdict(False, JOB_USER_CONFLICT_ERROR, "validate")
    interval = _file_setting(analysis.document, "logging", "host_metrics_logging_interval_seconds")
    env_interval = environment.get("DEADLINE_WORKER_HOST_METRICS_LOGGING_INTERVAL_SECONDS")
    if env_interval is not None:
        interval = float(env_interval.value)
    if interval is not None and interval <= 0:
        return StartupVerdict(
            False, f"Host metrics logging interval must be a positive number, but got: {float(interval)!r}", "validate"
        )
    return StartupVerdict(True)


def _password_arn(document: dict | None, environment: dict[str, EnvironmentValue]) -> str | None:
    env = environment.get("DEADLINE_WORKER_WINDOWS_JOB_USER_PASSWORD_ARN")
    return env.value if env is not None else _file_setting(document, "os", "windows_job_user_password_arn")


# ---------------------------------------------------------------------------------------------
# Versions


def parse_version(text: str | None) -> tuple[int, int, int] | None:
    """``0.27.3`` -> (0, 27, 3); missing parts count as 0 (``1.0`` -> (1, 0, 0)); pre-release tails are ignored."""
    match = re.match(r"^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", str(text or ""))
    if not match:
        return None
    major, minor, patch = (int(part or 0) for part in match.groups())
    return major, minor, patch


def version_text(version: tuple[int, int, int]) -> str:
    return ".".join(str(part) for part in version)


# ---------------------------------------------------------------------------------------------
# The reading of a host, and the findings


def rights_with_sources(account: dict | None) -> dict[str, dict]:
    """Each right the account holds: ``{direct: bool, groups: [{name, sid}]}`` (user_rights decides
    which group gives what); a right its deny counterpart overrides is marked ``denied``."""
    if not account:
        return {}
    direct = {right.casefold(): right for right in held_rights(account.get("rights") or [])}
    through_groups = user_rights.effective_rights(account)
    names = {right.casefold(): right for right in [*direct.values(), *through_groups]}
    held = {folded: {"direct": folded in direct, "groups": through_groups.get(name, [])} for folded, name in names.items()}
    result: dict[str, dict] = {}
    for folded, name in sorted(names.items()):
        entry = dict(held[folded])
        denying = [deny for deny, allow in user_rights.DENY_OVERRIDES.items() if allow.casefold() == folded]
        entry["denied"] = any(deny.casefold() in held for deny in denying)
        result[name] = entry
    return result


def holds_right(rights: dict[str, dict], right: str) -> bool:
    entry = rights.get(right)
    return entry is not None and not entry["denied"]


@dataclass
class Reading:
    """A host as read_agent_info saw it, with the analysis the findings are built on."""

    raw: dict
    config: ConfigAnalysis
    environment: dict[str, EnvironmentValue]
    settings: AgentSettings | None
    verdict: StartupVerdict
    rights: dict[str, dict] = field(default_factory=dict)

    @property
    def agent(self) -> dict:
        return self.raw.get("agent") or {}

    @property
    def service(self) -> dict:
        return self.raw.get("service") or {}

    @property
    def account(self) -> dict | None:
        return self.raw.get("account")

    @property
    def version(self) -> tuple[int, int, int] | None:
        return parse_version(self.agent.get("version"))


def read_host(raw: dict) -> Reading:
    """Analyse what read_agent_info returned."""
    config_raw = raw.get("config") or {}
    path = str(config_raw.get("path") or CONFIG_PATH)
    data = base64.b64decode(config_raw["content"]) if config_raw.get("exists") else None
    service = raw.get("service") or {}
    environment = service_environment(raw.get("machine_environment"), service.get("environment"))
    analysis = analyse_config(data, path)
    account = raw.get("account")
    rights = rights_with_sources(account)
    logon = holds_right(rights, SERVICE_LOGON_RIGHT) if account else True
    verdict = (
        StartupVerdict(False, SERVICE_LOGON_ERROR, "logon")
        if not logon
        else _verdict_from_analysis(analysis, environment, service.get("account"))
    )
    # Settings are resolvable whenever the bytes are TOML (even behind a BOM) or there is no file.
    settings = resolve_settings(analysis.document, environment) if analysis.document is not None or not analysis.exists else None
    return Reading(raw, analysis, environment, settings, verdict, rights)


def _finding(id_: str, severity: str, message: str, fix: str) -> dict:
    return {"id": id_, "severity": severity, "message": message, "fix": fix}


def _env_fix(reading: Reading, variable: str) -> str:
    service_name = reading.service.get("name") or DEFAULT_SERVICE
    parts = []
    for definition in all_definitions(reading.raw.get("machine_environment"), reading.service.get("environment"), variable):
        if definition.source == "machine":
            parts.append(
                f"remove the machine variable {definition.name} ({MACHINE_ENVIRONMENT_KEY}), e.g."
                f" [Environment]::SetEnvironmentVariable('{definition.name}', $null, 'Machine'); a machine variable"
                " reaches services only after a reboot, so reboot the worker afterwards"
            )
        else:
            parts.append(
                f"remove {definition.name}=... from the Environment value of"
                f" HKLM\\SYSTEM\\CurrentControlSet\\Services\\{service_name}; a service variable takes effect at the"
                " service's next start"
            )
    text = "; and ".join(parts)
    return text[:1].upper() + text[1:] + "."


def _version_finding(reading: Reading) -> dict | None:
    version = reading.version
    if version is None:
        return _finding(
            "AGENT_VERSION_UNSUPPORTED",
            "blocker",
            "The worker agent's version could not be read from the Python that hosts the service"
            f" ({reading.agent.get('error') or 'deadline_worker_agent is not importable'}); WORKER_AGENT_USER jobs"
            " need 0.27.3 or later.",
            "Install deadline-cloud-worker-agent 0.27.3 or later into the Python that hosts the service.",
        )
    if version >= MINIMUM_VERSION:
        return None
    if version < OPT_IN_SINCE:
        why = (
            f"Agent {version_text(version)} ignores run_jobs_as_agent_user on Windows: before 0.27.2 the"
            " WORKER_AGENT_USER check does not look at the override, so such jobs are always rejected"
            if version >= CHECK_SINCE
            else f"Agent {version_text(version)} predates run_jobs_as_agent_user's Windows support (added in 0.27.2)"
        )
    else:
        why = (
            f"Agent {version_text(version)} crashes with run_jobs_as_agent_user on Windows (issue #298: 'A user must be"
            " specified to set user permissions', fixed in 0.27.3)"
        )
    return _finding(
        "AGENT_VERSION_UNSUPPORTED",
        "blocker",
        f"{why}. The opt-in works from 0.27.3.",
        "Upgrade deadline-cloud-worker-agent to 0.27.3 or later (pip install into the Python that hosts the service), then restart the service.",
    )


def _utc(text: Any) -> datetime.datetime | None:
    """A time as Windows and the simulated worker report it (ISO 8601), or None."""
    if not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def config_changed_since_start(reading: Reading) -> bool:
    """worker.toml was written after the running agent started: the agent reads it only at start,
    so it still runs with what the file held before (None times, from older readings, say no)."""
    if reading.service.get("state") != "running" or not reading.config.exists:
        return False
    started = _utc(reading.service.get("started_at"))
    modified = _utc((reading.raw.get("config") or {}).get("modified_at"))
    return started is not None and modified is not None and modified > started


def _would_print_admin_message(reading: Reading) -> str | None:
    """The scheduler's text if it would fail WORKER_AGENT_USER jobs on this host, else None."""
    version = reading.version
    settings = reading.settings
    if settings is None or (version is not None and version < CHECK_SINCE):
        return None
    message = ADMIN_MESSAGE_0_23 if version is not None and version < CHECK_MESSAGE_SINCE else ADMIN_MESSAGE
    if version is not None and version < OPT_IN_SINCE:
        return message  # the override is not consulted before 0.27.2
    if settings.run_jobs_as_agent_user.value is not True and settings.windows_job_user.value is None:
        return message
    return None


def findings(reading: Reading) -> list[dict]:
    """The findings of issue 4's table for one host, blockers first."""
    found: list[dict] = []
    service = reading.service
    service_name = service.get("name") or DEFAULT_SERVICE
    config = reading.config
    settings = reading.settings

    if not service.get("exists"):
        found.append(
            _finding(
                "SERVICE_MISSING",
                "blocker",
                f"The service {service_name} does not exist: nothing runs the worker agent.",
                "Install the service with install-deadline-worker (its default service name is DeadlineWorker), or set the service name.",
            )
        )
    version_finding = _version_finding(reading)
    if version_finding:
        found.append(version_finding)

    if config_changed_since_start(reading):
        found.append(
            _finding(
                "CONFIG_NOT_LOADED",
                "warning",
                f"{config.path} was written at {(reading.raw.get('config') or {}).get('modified_at')}, after the running agent"
                f" started ({service.get('started_at')}): the agent reads worker.toml only when it starts, so it still runs"
                " with what the file held before.",
                f"Restart the {service_name} service (deadline_cloud.cmf.worker_agent_service).",
            )
        )

    account = reading.account
    account_error = reading.raw.get("account_error")
    if account is None and account_error:
        found.append(
            _finding(
                "ACCOUNT_MISSING",
                "blocker",
                f"The agent's account cannot be read: {account_error.get('message')}. The service cannot log on as an account"
                " that does not resolve, and its groups and rights cannot be checked.",
                "Create the account (install-deadline-worker creates deadline-worker), or name the account the service logs"
                " on as.",
            )
        )
    if account and not holds_right(reading.rights, SERVICE_LOGON_RIGHT) and service.get("exists"):
        found.append(
            _finding(
                "SERVICE_LOGON_RIGHT_MISSING",
                "blocker",
                f"{account.get('name')} ({account.get('sid')}) lacks SeServiceLogonRight (Log on as a service), directly or"
                f" through a local group (or a deny right overrides it): the Service Control Manager cannot start {service_name} under it"
                f" ('{SERVICE_LOGON_ERROR}').",
                f"Grant SeServiceLogonRight to {account.get('sid')} directly (deadline_cloud.cmf.win_user_rights).",
            )
        )

    if not config.exists:
        found.append(
            _finding(
                "CONFIG_MISSING",
                "blocker",
                f"{config.path} does not exist: the agent reads settings only from its environment, and without"
                " farm_id and fleet_id it does not start.",
                "Run install-deadline-worker, or restore worker.toml from worker.toml.bak or the agent's worker.toml.example.",
            )
        )
    elif config.encoding != "utf-8":
        if config.decoded is None:
            raise ValueError("an existing config was analysed without its decoding")
        described = {
            "utf-8-bom": "starts with a UTF-8 byte order mark",
            "utf-16": "is UTF-16 (what Windows PowerShell's Out-File and > write)",
            "invalid": "is not valid UTF-8",
        }[config.encoding or "invalid"]
        found.append(
            _finding(
                "CONFIG_ENCODING",
                "blocker",
                f"{config.path} {described}; the agent reads it as strict UTF-8 and stops: {config.decoded.agent_error}",
                "Save worker.toml as UTF-8 without a BOM (deadline_cloud.cmf.worker_toml rewrites it so;"
                " in Windows PowerShell 5.1 write bytes, not Set-Content -Encoding UTF8).",
            )
        )
    if config.parse_error is not None:
        where = f" at line {config.parse_error.line}, column {config.parse_error.column}" if config.parse_error.line else ""
        found.append(
            _finding(
                "CONFIG_INVALID",
                "blocker",
                f"{config.path} is not valid TOML{where}: the agent stops with"
                f" 'Configuration file ({config.path}) is not valid TOML: {config.parse_error.message}'.",
                f"Correct the TOML syntax{where}.",
            )
        )
    if config.schema is not None:
        impersonation_error = f"os -> __root__: {REMOVED_KEYS[('os', 'impersonation')]}"
        invalid = [e for e in config.schema.errors if e != impersonation_error]
        if impersonation_error in config.schema.errors:
            found.append(
                _finding(
                    "LEGACY_IMPERSONATION_KEY",
                    "blocker",
                    f"[os] impersonation is present in {config.path}; the agent refuses to start: "
                    f"'{REMOVED_KEYS[('os', 'impersonation')]}'",
                    "Remove [os] impersonation (keep it as a comment) and set [os] run_jobs_as_agent_user = true.",
                )
            )
        if invalid:
            found.append(
                _finding(
                    "CONFIG_INVALID",
                    "blocker",
                    f"The agent refuses {config.path} (Parsing errors loading configuration file): " + "; ".join(invalid) + ".",
                    "Add the missing tables ([worker], [aws], [logging], [os], [capabilities] with"
                    " [capabilities.amounts] and [capabilities.attributes]) and give each key the agent's type.",
                )
            )
        for key, found_in, belongs in config.schema.misplaced:
            stable = KNOWN_KEYS[key].table_is_stable
            found.append(
                _finding(
                    "MISPLACED_KEY",
                    "warning",
                    f"{key} sits in [{found_in}] of {config.path}; the agent reads it only under [{belongs}]"
                    + (" in every release, so it ignores it there." if stable else " in this release, and ignores it there."),
                    f"Move {key} under [{belongs}].",
                )
            )

    if settings is not None:
        opt_in = settings.run_jobs_as_agent_user
        job_user = settings.windows_job_user
        if opt_in.value is not True:
            source = {
                "default": "it is not set anywhere, and the default is false",
                "file": f"{config.path} sets [os] run_jobs_as_agent_user = false",
                "machine": f"the machine variable {opt_in.variable} turns it off",
                "service": f"the service's Environment variable {opt_in.variable} turns it off",
            }[opt_in.source]
            found.append(
                _finding(
                    "AGENT_OPT_IN_MISSING",
                    "blocker",
                    f"run_jobs_as_agent_user resolves to false ({source}): the agent fails every WORKER_AGENT_USER job on Windows.",
                    "Set [os] run_jobs_as_agent_user = true in worker.toml (deadline_cloud.cmf.worker_toml) and restart the service.",
                )
            )
        if opt_in.source in ("machine", "service") and opt_in.value is not True:
            found.append(
                _finding(
                    "ENV_OVERRIDE",
                    "blocker",
                    f"{opt_in.variable}={reading.environment[OPT_IN_VARIABLE].value} in"
                    f" {reading.environment[OPT_IN_VARIABLE].where} overrides worker.toml and turns run_jobs_as_agent_user off.",
                    _env_fix(reading, OPT_IN_VARIABLE),
                )
            )
        if job_user.source in ("machine", "service"):
            found.append(
                _finding(
                    "ENV_OVERRIDE",
                    "blocker",
                    f"{job_user.variable}={job_user.value} in {reading.environment[JOB_USER_VARIABLE].where} sets a Windows job"
                    " user, overriding worker.toml.",
                    _env_fix(reading, JOB_USER_VARIABLE),
                )
            )
        if job_user.value is not None and opt_in.value is True:
            where = "worker.toml's [os] windows_job_user" if job_user.source == "file" else f"the variable {job_user.variable}"
            found.append(
                _finding(
                    "JOB_USER_CONFLICT",
                    "blocker",
                    f"windows_job_user = {job_user.value!r} (from {where}) is set together with run_jobs_as_agent_user = true;"
                    f" the agent refuses to start: '{JOB_USER_CONFLICT_ERROR}'",
                    "Remove windows_job_user (comment it out in [os]; unset the variable if it comes from the environment).",
                )
            )
        shutdown = settings.shutdown_on_stop
        if shutdown.value is True and account is not None and not holds_right(reading.rights, SHUTDOWN_PRIVILEGE):
            found.append(
                _finding(
                    "SHUTDOWN_RIGHT_MISSING",
                    "warning",
                    f"shutdown_on_stop is true but {account.get('name')} lacks SeShutdownPrivilege: when the service stops the"
                    " worker, the agent's shutdown command fails and is only logged.",
                    f"Grant SeShutdownPrivilege to {account.get('sid')} directly (deadline_cloud.cmf.win_user_rights).",
                )
            )

    if account is not None and any(
        str(group.get("sid", "")).upper() == ADMINISTRATORS for group in account.get("groups") or []
    ):
        found.append(
            _finding(
                "AGENT_USER_IS_ADMIN",
                "security",
                f"{account.get('name')} ({account.get('sid')}) is in Administrators ({ADMINISTRATORS}): every"
                " WORKER_AGENT_USER job runs as an administrator.",
                "Grant the account SeServiceLogonRight, SeAssignPrimaryTokenPrivilege, SeIncreaseQuotaPrivilege (and"
                " SeShutdownPrivilege with shutdown_on_stop) directly, then remove it from Administrators.",
            )
        )

    explained = {f["id"] for f in found if f["severity"] == "blocker"}
    if not reading.verdict.starts and not explained & _STARTUP_FINDINGS:
        found.append(
            _finding(
                "AGENT_STARTUP_ERROR",
                "blocker",
                f"The agent stops at start with: {reading.verdict.error}",
                "Correct the setting the error names, in worker.toml or the environment.",
            )
        )

    # Only an agent that gets past its configuration fails jobs with that message.
    admin_message = _would_print_admin_message(reading) if reading.verdict.starts else None
    if admin_message:
        found.append(
            _finding(
                "MESSAGE_IS_MISLEADING",
                "info",
                f"The agent fails WORKER_AGENT_USER jobs with \"{admin_message}\" That text is hard-coded: the agent never"
                " checks its privileges or group membership. Only the opt-in decides it ([os] run_jobs_as_agent_user = true,"
                " agent 0.27.3 or later); removing the account from Administrators does not change it.",
                "Set [os] run_jobs_as_agent_user = true and restart the service.",
            )
        )
    order = {severity: i for i, severity in enumerate(SEVERITIES)}
    return sorted(found, key=lambda f: order[f["severity"]])


# Blockers that already explain a failed startup verdict.
_STARTUP_FINDINGS = frozenset(
    {
        "ACCOUNT_MISSING",
        "SERVICE_LOGON_RIGHT_MISSING",
        "CONFIG_ENCODING",
        "CONFIG_INVALID",
        "CONFIG_MISSING",
        "LEGACY_IMPERSONATION_KEY",
        "JOB_USER_CONFLICT",
    }
)


def is_ready(found: list[dict]) -> bool:
    """A WORKER_AGENT_USER job would run once the agent loads what is on disk now."""
    return not any(f["severity"] == "blocker" for f in found)


def _config_values(analysis: ConfigAnalysis) -> dict:
    values: dict[str, dict] = {}
    for known in KNOWN_KEYS.values():
        values.setdefault(known.table, {})[known.key] = _file_setting(analysis.document, known.table, known.key)
    return values


def describe(raw: dict) -> dict:
    """worker_agent_info's result for one reading of a host."""
    reading = read_host(raw)
    found = findings(reading)
    config = reading.config
    account = reading.account
    return {
        "agent": {
            "installed": reading.agent.get("version") is not None,
            "version": reading.agent.get("version"),
            "location": reading.agent.get("location"),
            "python": reading.agent.get("python"),
        },
        "service": {
            "name": reading.service.get("name"),
            "exists": bool(reading.service.get("exists")),
            "state": reading.service.get("state"),
            "start_mode": reading.service.get("start_mode"),
            "account": reading.service.get("account"),
            "environment": list(reading.service.get("environment") or []),
            "pid": reading.service.get("pid"),
            "started_at": reading.service.get("started_at"),
        },
        "account": None
        if account is None
        else {
            "name": account.get("name"),
            "domain": account.get("domain"),
            "sid": account.get("sid"),
            "groups": [{"name": g.get("name"), "sid": g.get("sid")} for g in account.get("groups") or []],
            "rights": sorted(account.get("rights") or []),
            "effective_rights": reading.rights,
        },
        "config": {
            "path": config.path,
            "exists": config.exists,
            "modified_at": (reading.raw.get("config") or {}).get("modified_at"),
            "encoding": config.encoding,
            "parse_error": None
            if config.parse_error is None
            else {"message": config.parse_error.message, "line": config.parse_error.line, "column": config.parse_error.column},
            "errors": list(config.schema.errors) if config.schema else [],
            "values": _config_values(config),
        },
        "environment": {
            name: {"value": value.value, "source": value.source}
            for name, value in sorted(reading.environment.items())
            if is_agent_variable(name)
        },
        "settings": reading.settings.as_dict() if reading.settings else None,
        "startup": reading.verdict.as_dict(),
        "findings": found,
        "ready": is_ready(found),
    }


def read_agent_info(host: Any, service: str, config_path: str = CONFIG_PATH, account: str | None = None) -> dict:
    """worker_agent_info's result from ``host`` (a plugin_utils.host.Host), in one remote call."""
    raw = host.call("read_agent_info", service=service, config_path=config_path, account=account or "")
    result = describe(raw)
    if raw.get("account_error"):
        result["account_error"] = raw["account_error"]
    return result
