# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The settings the agent resolves from its environment and worker.toml, as WorkerSettings does.

Written from the agent's ``config/settings.py`` (release 0.33.6) and domain/WORKER-AGENT.md
sections 2.1, 2.2 and 2.4: the environment the service process sees (machine, the account's user
variables, the service's own), the variables the agent reads, and the opt-in, the job user and
shutdown as the service's agent resolves them (CLI > environment > file > default).

Internal to this collection: not a public API; it may change in any release.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent.config_file import (
    KNOWN_KEYS,
    KnownKey,
    agent_section,
    agent_value,
    agent_value_error,
    as_bool,
)

OPT_IN_VARIABLE = "DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER"
JOB_USER_VARIABLE = "DEADLINE_WORKER_WINDOWS_JOB_USER"
MACHINE_ENVIRONMENT_KEY = r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Environment"

# ---------------------------------------------------------------------------------------------
# The environment the service process sees


@dataclass(frozen=True)
class EnvironmentValue:
    name: str
    value: str
    source: str  # machine | user | service
    key: str = MACHINE_ENVIRONMENT_KEY  # the registry key that holds it (machine and user variables)

    @property
    def where(self) -> str:
        if self.source == "service":
            return "the service's own Environment value"
        if self.source == "user":
            return f"the service account's own user variables ({self.key})"
        return f"the machine environment ({self.key})"


def user_environment_key(sid: str | None) -> str:
    return f"HKU\\{sid or '<account SID>'}\\Environment"


def _split_service_environment(entries: list[str] | None) -> dict[str, str]:
    values: dict[str, str] = {}
    for entry in entries or []:
        name, sep, value = str(entry).partition("=")
        if sep and name:
            values[name] = value
    return values


def _definitions(
    machine: dict[str, str] | None, service_entries: list[str] | None, user: dict[str, str] | None, user_sid: str | None
) -> list[EnvironmentValue]:
    """Every variable, lowest precedence first: machine, then the account's user variables, then the service's own.

    Windows builds a service's environment from the machine variables, then (for a user account, as
    far as documented: not verified here) that user's variables, then the service's Environment value.
    """
    found = [EnvironmentValue(n, str(v), "machine") for n, v in (machine or {}).items()]
    found += [EnvironmentValue(n, str(v), "user", user_environment_key(user_sid)) for n, v in (user or {}).items()]
    found += [EnvironmentValue(n, v, "service") for n, v in _split_service_environment(service_entries).items()]
    return found


def service_environment(
    machine: dict[str, str] | None,
    service_entries: list[str] | None,
    user: dict[str, str] | None = None,
    user_sid: str | None = None,
) -> dict[str, EnvironmentValue]:
    """What the service process sees: machine variables, overridden by the account's user variables
    (None: not read, as from older hosts), overridden by the service's own values.

    Windows compares variable names case-insensitively; keys here are upper case.
    """
    return {definition.name.upper(): definition for definition in _definitions(machine, service_entries, user, user_sid)}


def all_definitions(
    machine: dict[str, str] | None,
    service_entries: list[str] | None,
    variable: str,
    user: dict[str, str] | None = None,
    user_sid: str | None = None,
) -> list[EnvironmentValue]:
    """Every place ``variable`` is defined, so a fix names each one (removing one may reveal the other)."""
    return [d for d in _definitions(machine, service_entries, user, user_sid) if d.name.upper() == variable]


# The settings the agent reads from environment variables (WorkerSettings.Config.fields), with
# the file key whose rules they share. Capabilities (JSON) have their own check (CAPABILITIES_VARIABLE).
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


# pydantic parses a complex field's variable as JSON while it gathers the values (after the file is
# loaded, before any validation): a value that is not JSON stops the agent with pydantic's
# SettingsError (entrypoint's generic handler: exit 1), naming the variable as pydantic keys it.
CAPABILITIES_VARIABLE = "DEADLINE_WORKER_CAPABILITIES"


def invalid_environment_value(environment: dict[str, EnvironmentValue], variable: str) -> str | None:
    """Why the agent refuses the value ``variable`` has in ``environment`` (it then does not start); None when it takes it."""
    env = environment.get(variable)
    if env is None or variable not in ENVIRONMENT_SETTINGS:
        return None
    return agent_value_error(ENVIRONMENT_SETTINGS[variable][1], env.value)


def is_agent_variable(name: str) -> bool:
    upper = name.upper()
    return upper.startswith("DEADLINE_WORKER_") or upper in ENVIRONMENT_SETTINGS


# ---------------------------------------------------------------------------------------------
# Settings, resolved as WorkerSettings does: CLI > environment > file > default


@dataclass(frozen=True)
class ResolvedSetting:
    name: str
    value: Any
    source: str  # default | file | machine | user | service   (never cli: the service passes cli_args=[])
    variable: str | None = None

    def as_dict(self) -> dict:
        return {"value": self.value, "source": self.source, "variable": self.variable}


def file_setting(document: dict | None, table: str, key: str) -> Any:
    section = agent_section(document, table)
    if section is None or key not in section:
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
        "run_jobs_as_agent_user", OPT_IN_VARIABLE, file_setting(document, "os", "run_jobs_as_agent_user"), False, environment
    )
    job_user = resolve_setting(
        "windows_job_user", JOB_USER_VARIABLE, file_setting(document, "os", "windows_job_user"), None, environment
    )
    # The agent keeps no_shutdown = not shutdown_on_stop (ConfigFile.as_settings maps the key only when
    # it is set); DEADLINE_WORKER_NO_SHUTDOWN overrides the file. Without either, WorkerSettings keeps
    # its default no_shutdown = False: the agent shuts the host down when the service stops the worker.
    file_shutdown = file_setting(document, "os", "shutdown_on_stop")
    no_shutdown = environment.get("DEADLINE_WORKER_NO_SHUTDOWN")
    if no_shutdown is not None and as_bool(no_shutdown.value) is not None:
        shutdown = ResolvedSetting("shutdown_on_stop", not as_bool(no_shutdown.value), no_shutdown.source, no_shutdown.name)
    elif file_shutdown is not None:
        shutdown = ResolvedSetting("shutdown_on_stop", file_shutdown, "file")
    else:
        shutdown = ResolvedSetting("shutdown_on_stop", True, "default")
    return AgentSettings(opt_in, job_user, shutdown)
