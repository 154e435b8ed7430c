# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether the agent, started by its service, gets past its configuration, and the error it stops with.

Written from the agent's ``startup/entrypoint.py``, ``config/config.py`` and ``config/settings.py``
(release 0.33.6): entrypoint -> Configuration.load -> WorkerSettings -> ConfigFile.load. The
simulated worker's restart verdict and worker_agent_info's findings are both taken from here, so
the two never disagree.

Internal to this collection: not a public API; it may change in any release.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent.config_file import (
    CONFIG_PATH,
    DecodedConfig,
    ParseError,
    SchemaReport,
    capabilities_problems,
    check_document,
    decode_config,
    parse_toml,
)
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent.settings import (
    CAPABILITIES_VARIABLE,
    ENVIRONMENT_SETTINGS,
    EnvironmentValue,
    file_setting,
    invalid_environment_value,
    resolve_settings,
)
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.accounts import parse_account, same_account_by_name

# config.py Configuration._validate
JOB_USER_CONFLICT_ERROR = (
    "Cannot specify a windows job user when the option to run jobs as the agent user is enabled."
)
# What the Service Control Manager reports when the account lacks "Log on as a service" (ERROR_SERVICE_LOGON_FAILED).
SERVICE_LOGON_ERROR = "The service did not start due to a logon failure."

_CAPABILITIES_AFTER = "allow_instance_profile"  # WorkerSettings' field order, which orders its errors

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


def capabilities_from_environment(environment: dict[str, EnvironmentValue]) -> tuple[str | None, list[tuple[str, str]]]:
    """DEADLINE_WORKER_CAPABILITIES as pydantic takes it: (the SettingsError text when it is not JSON,
    the Capabilities model's refusals of the JSON, located as Configuration.load words them)."""
    env = environment.get(CAPABILITIES_VARIABLE)
    if env is None:
        return None, []
    try:
        value = json.loads(env.value)
    except ValueError:
        return f'error parsing env var "{CAPABILITIES_VARIABLE.lower()}"', []
    if not isinstance(value, dict):
        return None, [("capabilities", "value is not a valid dict")]
    return None, [(where.replace(" -> ", "."), message) for where, message in capabilities_problems(value)]


def _settings_errors(analysis: ConfigAnalysis, environment: dict[str, EnvironmentValue]) -> list[tuple[str, str]]:
    """What WorkerSettings' own validation refuses: environment values, and ids missing everywhere."""
    errors: list[tuple[str, str]] = []
    for variable, (setting, _known) in ENVIRONMENT_SETTINGS.items():
        problem = invalid_environment_value(environment, variable)
        if problem:
            errors.append((setting, problem))
    for key in ("farm_id", "fleet_id"):
        if environment.get(f"DEADLINE_WORKER_{key.upper()}") is None and file_setting(analysis.document, "worker", key) is None:
            errors.append((key, "field required"))
    order = {name: i for i, (name, _k) in enumerate(ENVIRONMENT_SETTINGS.values())}
    capabilities_at = order[_CAPABILITIES_AFTER] + 0.5
    errors.extend(capabilities_from_environment(environment)[1])
    return sorted(errors, key=lambda e: capabilities_at if e[0].startswith("capabilities") else order.get(e[0], 0))


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
    return verdict_from_analysis(analysis, environment, service_account)


def verdict_from_analysis(
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
        if analysis.schema.problems:
            return StartupVerdict(
                False,
                f"Parsing errors loading configuration file ({analysis.path}):\n"
                + _pydantic_errors("ConfigFile", analysis.schema.problems),
                "config_file",
            )
    # A missing file is not an error to the agent: WorkerSettings then reads only the environment.
    not_json = capabilities_from_environment(environment)[0]
    if not_json:  # raised while WorkerSettings gathers the values (the file is loaded before), before any validation
        return StartupVerdict(False, not_json, "settings")
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
    interval = file_setting(analysis.document, "logging", "host_metrics_logging_interval_seconds")
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
    return env.value if env is not None else file_setting(document, "os", "windows_job_user_password_arn")
