# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The agent's decisions about a worker, as findings: the reading of a host and the rules table.

Written from the agent's source (``scheduler/scheduler.py``, ``config/config.py``,
``windows/win_service.py``, release 0.33.6) and domain/WORKER-AGENT.md. A *reading* is what
``read_agent_info`` returns from a host (the same shape from PowerShell and from the simulated
worker); :func:`describe` turns it into worker_agent_info's result.

Internal to this collection: not a public API; it may change in any release.
"""

from __future__ import annotations

import base64
import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent.config_file import (
    CONFIG_PATH,
    KNOWN_KEYS,
    REMOVED_KEYS,
    lone_carriage_returns,
)
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent.settings import (
    CAPABILITIES_VARIABLE,
    ENVIRONMENT_SETTINGS,
    JOB_USER_VARIABLE,
    MACHINE_ENVIRONMENT_KEY,
    OPT_IN_VARIABLE,
    AgentSettings,
    EnvironmentValue,
    ResolvedSetting,
    all_definitions,
    file_setting,
    invalid_environment_value,
    is_agent_variable,
    resolve_settings,
    service_environment,
)
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent.startup import (
    JOB_USER_CONFLICT_ERROR,
    SERVICE_LOGON_ERROR,
    ConfigAnalysis,
    StartupVerdict,
    analyse_config,
    capabilities_from_environment,
    verdict_from_analysis,
)
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows import user_rights
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.accounts import (
    ACCOUNT_AMBIGUOUS,
    ACCOUNT_NOT_FOUND,
    ADMINISTRATORS,
    DOMAIN_UNREACHABLE,
    DOMAIN_UNREACHABLE_FIX,
    LOCAL_SERVICE,
    LOCAL_SYSTEM,
    NETWORK_SERVICE,
    same_sid,
    sid_key,
)
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.groups import (
    carriers,
    token_groups,
    token_groups_error_code,
    token_groups_fix,
    token_groups_known,
    token_groups_unknown_message,
)
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.user_rights import (
    PolicyGap,
    held_rights,
    policy_gap_fix,
    policy_gap_text,
    policy_gaps,
    policy_rights,
)

SERVICE_LOGON_RIGHT = "SeServiceLogonRight"
DENY_SERVICE_LOGON_RIGHT = "SeDenyServiceLogonRight"
SHUTDOWN_PRIVILEGE = "SeShutdownPrivilege"
DEFAULT_SERVICE = "DeadlineWorker"
LOG_PATH = r"C:\ProgramData\Amazon\Deadline\Logs\worker-agent.log"

# The scheduler's text since 0.24.0 (scheduler.py), and 0.23.0's before it (section 1.2).
ADMIN_MESSAGE = "Job cannot run as WORKER_AGENT_USER. Worker Agent is running with Administrator privileges."
ADMIN_MESSAGE_0_23 = "Job cannot run as WORKER_AGENT_USER as it has administrator privileges."

MINIMUM_VERSION = (0, 27, 3)
OPT_IN_SINCE = (0, 27, 2)
CHECK_SINCE = (0, 23, 0)
CHECK_MESSAGE_SINCE = (0, 24, 0)

SEVERITIES = ("blocker", "security", "warning", "info")

# The rights the account holds directly once out of Administrators, in the collection's final state
# (DESIGN, and the role's default deadline_worker_agent_user_rights), SeShutdownPrivilege aside: the
# installer's grants. Only the logon right is needed for WORKER_AGENT_USER jobs (domain notes 4.1, 6).
FINAL_STATE_RIGHTS = ("SeServiceLogonRight", "SeAssignPrimaryTokenPrivilege", "SeIncreaseQuotaPrivilege")

# ---------------------------------------------------------------------------------------------
# Versions


def parse_version(text: str | None) -> tuple[int, int, int] | None:
    """``0.27.3`` -> (0, 27, 3); missing parts count as 0 (``1.0`` -> (1, 0, 0)); pre-release tails are ignored."""
    match = re.match(r"^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", str(text or ""))
    if not match:
        return None
    major, minor, patch = (int(part or 0) for part in match.groups())
    return major, minor, patch


_PRE_RELEASE = re.compile(r"^\s*v?\d+(?:\.\d+){0,2}[-_.]?(?:a|alpha|b|beta|c|rc|pre|preview|dev)(?:[-_.]?\d+)?", re.IGNORECASE)


def is_pre_release(text: str | None) -> bool:
    """``0.27.3rc1``, ``0.27.3.dev4+g1a2b3c4``: a pre-release or development build, older than the release it leads to (PEP 440)."""
    return bool(_PRE_RELEASE.match(str(text or "")))


def older_than(text: str | None, minimum: tuple[int, int, int]) -> bool | None:
    """Whether the version ``text`` comes before ``minimum``, a pre-release of ``minimum`` included; None when unreadable."""
    version = parse_version(text)
    if version is None:
        return None
    return version < minimum or (version == minimum and is_pre_release(text))


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


@dataclass
class Reading:
    """A host as read_agent_info saw it, with the analysis the findings are built on."""

    raw: dict
    config: ConfigAnalysis
    environment: dict[str, EnvironmentValue]
    settings: AgentSettings | None
    verdict: StartupVerdict
    rights: dict[str, dict] = field(default_factory=dict)
    # The rights the account is to hold outside Administrators, as the caller converges it (the role: its
    # deadline_worker_agent_user_rights, with the shutdown rights when the agent shuts the host down);
    # None: the collection's final state (FINAL_STATE_RIGHTS, and SeShutdownPrivilege when it shuts down).
    final_rights: tuple[str, ...] | None = None

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


# LocalSystem, LocalService and NetworkService log on as services by design, with no right to hold.
BUILTIN_SERVICE_ACCOUNTS = frozenset({LOCAL_SYSTEM, LOCAL_SERVICE, NETWORK_SERVICE})


def _sid_of(account: dict | None) -> str:
    return sid_key((account or {}).get("sid"))


def lacks_right(account: dict | None, rights: dict[str, dict], right: str) -> bool:
    """Whether the account is known not to hold ``right``: not directly, not through a group it is known
    to keep. Where its domain groups could not be read (``token_groups_known`` false), one of them may
    give it: that cannot be told, so it is not said to lack it (DOMAIN_UNREACHABLE or TOKEN_GROUPS_UNKNOWN
    names the cause instead)."""
    return right not in rights and token_groups_known(account or {})


def can_log_on_as_service(account: dict | None, rights: dict[str, dict]) -> bool:
    """Whether the Service Control Manager can log the service on as ``account`` (1069 otherwise):
    an enabled account holding SeServiceLogonRight not overridden by its deny right, or a built-in
    service account. An account that was not read is not judged here (ACCOUNT_MISSING or ACCOUNT_UNREADABLE is), nor one
    that may hold the right through a domain group the host could not read (see lacks_right)."""
    if not account:
        return True
    if account.get("enabled") is False:
        return False
    if _sid_of(account) in BUILTIN_SERVICE_ACCOUNTS:
        return True
    if DENY_SERVICE_LOGON_RIGHT in rights:
        return False
    return not lacks_right(account, rights, SERVICE_LOGON_RIGHT)


def _user_sid(raw: dict) -> str | None:
    """The SID whose user variables user_environment holds: the service's logon account."""
    return (raw.get("service") or {}).get("account_sid") or (raw.get("account") or {}).get("sid")


def read_host(raw: dict, final_rights: tuple[str, ...] | None = None) -> Reading:
    """Analyse what read_agent_info returned; ``final_rights``: see Reading."""
    config_raw = raw.get("config") or {}
    path = str(config_raw.get("path") or CONFIG_PATH)
    data = base64.b64decode(config_raw["content"]) if config_raw.get("exists") else None
    service = raw.get("service") or {}
    environment = service_environment(
        raw.get("machine_environment"), service.get("environment"), raw.get("user_environment"), _user_sid(raw)
    )
    analysis = analyse_config(data, path)
    account = raw.get("account")
    rights = rights_with_sources(account)
    logon = can_log_on_as_service(account, rights)
    verdict = (
        StartupVerdict(False, SERVICE_LOGON_ERROR, "logon")
        if not logon
        else verdict_from_analysis(analysis, environment, service.get("account"))
    )
    # Settings are resolvable whenever the bytes are TOML (even behind a BOM) or there is no file.
    settings = resolve_settings(analysis.document, environment) if analysis.document is not None or not analysis.exists else None
    return Reading(raw, analysis, environment, settings, verdict, rights, final_rights)


def _finding(id_: str, severity: str, message: str, fix: str) -> dict:
    return {"id": id_, "severity": severity, "message": message, "fix": fix}


def _env_fix(reading: Reading, variable: str) -> str:
    service_name = reading.service.get("name") or DEFAULT_SERVICE
    parts = []
    definitions = all_definitions(
        reading.raw.get("machine_environment"),
        reading.service.get("environment"),
        variable,
        reading.raw.get("user_environment"),
        _user_sid(reading.raw),
    )
    for definition in definitions:
        if definition.source == "user":
            parts.append(_user_variable_fix(definition))
        elif definition.source == "machine":
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


def _user_variable_fix(definition: EnvironmentValue) -> str:
    return (
        f"remove the user variable {definition.name} of the service account (value {definition.name} under {definition.key}):"
        f" as that account, [Environment]::SetEnvironmentVariable('{definition.name}', $null, 'User'), or"
        f" reg delete \"{definition.key}\" /v {definition.name} /f; then restart the service"
    )


def _version_problem(reading: Reading) -> str | None:
    """Why this agent version cannot run WORKER_AGENT_USER jobs as the agent user, or None."""
    version = reading.version
    text = reading.agent.get("version")
    if version is None and text is not None:
        return (
            f"The worker agent reports its version as {str(text)!r}, which is no release number: whether it is 0.27.3 or"
            " later, which WORKER_AGENT_USER jobs need, cannot be told."
        )
    if version is None:
        return (
            "The worker agent's version could not be read from the Python that hosts the service"
            f" ({reading.agent.get('error') or 'deadline_worker_agent is not importable'}); WORKER_AGENT_USER jobs"
            " need 0.27.3 or later."
        )
    if not older_than(reading.agent.get("version"), MINIMUM_VERSION):
        return None
    if version == MINIMUM_VERSION:
        return (
            f"Agent {reading.agent.get('version')} is a pre-release or development build of {version_text(version)}, older"
            " than the release: it may lack the fix for issue #298 (run_jobs_as_agent_user crashes on Windows, fixed in"
            " 0.27.3). The opt-in works from the 0.27.3 release."
        )
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
    return f"{why}. The opt-in works from 0.27.3."


# What the Python that hosts the service says when the agent's distribution is not installed there
# (importlib.metadata), or what the host says when there is no agent or no Python to ask.
_NOT_INSTALLED = re.compile(r"PackageNotFoundError|No package metadata|is not installed|no python\.exe|does not exist", re.IGNORECASE)


def _version_fix(reading: Reading) -> str:
    if reading.version is None and reading.agent.get("version") is not None:
        return (
            "Reinstall a release of deadline-cloud-worker-agent, 0.27.3 or later, into the Python that hosts the service"
            ' (pip install --force-reinstall "deadline-cloud-worker-agent>=0.27.3"), so that its version can be read; then run again.'
        )
    if reading.version is None and not _NOT_INSTALLED.search(str(reading.agent.get("error") or "deadline_worker_agent is not installed")):
        return (
            "Correct what the error says (the service's Python must run, and pip show deadline-cloud-worker-agent with it must"
            " show 0.27.3 or later), then run again."
        )
    if reading.version is None:
        return "Install deadline-cloud-worker-agent 0.27.3 or later into the Python that hosts the service."
    return "Upgrade deadline-cloud-worker-agent to 0.27.3 or later (pip install into the Python that hosts the service), then restart the service."


# .NET's round-trip format ("o"), which the PowerShell side writes, has seven fractional digits
# and a Z; Python's fromisoformat reads either only from 3.11 on (3.10: three or six digits, +00:00).
_FRACTION = re.compile(r"\.(\d+)")


def _utc(text: Any) -> datetime.datetime | None:
    """A time as Windows and the simulated worker report it (ISO 8601), or None."""
    if not text:
        return None
    iso = str(text).strip()
    if iso[-1:] in ("Z", "z"):
        iso = iso[:-1] + "+00:00"
    iso = _FRACTION.sub(lambda found: "." + found.group(1).ljust(6, "0")[:6], iso, count=1)
    try:
        moment = datetime.datetime.fromisoformat(iso)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


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


# ---------------------------------------------------------------------------------------------
# The findings: a table of small rules, evaluated in order (then sorted by severity, stably)


@dataclass(frozen=True)
class Rule:
    """One finding the agent's decisions can lead to.

    ``test`` returns what the finding is about: False/None for no finding, True for one, or a list
    with one subject per finding (MISPLACED_KEY names each key); ``message`` and ``fix`` get the
    reading and that subject (None when the test returned True)."""

    id: str
    severity: str
    test: Callable[[Reading], Any]
    message: Callable[[Reading, Any], str]
    fix: Callable[[Reading, Any], str]

    def subjects(self, reading: Reading) -> list[Any]:
        result = self.test(reading)
        if result is None or result is False:
            return []
        if result is True:
            return [None]
        return list(result) if isinstance(result, list) else [result]

    def evaluate(self, reading: Reading) -> list[dict]:
        return [_finding(self.id, self.severity, self.message(reading, s), self.fix(reading, s)) for s in self.subjects(reading)]


def _service_name(reading: Reading) -> str:
    return reading.service.get("name") or DEFAULT_SERVICE


def _account_text(reading: Reading) -> str:
    account = reading.account or {}
    return f"{account.get('name')} ({account.get('sid')})"


def _holders(reading: Reading, right: str) -> str:
    """How the account holds ``right``: "directly", "through Guests (S-1-5-32-546)", or both."""
    entry = reading.rights.get(right) or {}
    ways = ["directly"] if entry.get("direct") else []
    ways += [f"through {g.get('name')} ({g.get('sid')})" for g in entry.get("groups") or []]
    return " and ".join(ways)


def _deny_fix(reading: Reading) -> str:
    """Remove the deny right where it is held: from the account, or from (or out of) the groups it comes through."""
    entry = reading.rights.get(DENY_SERVICE_LOGON_RIGHT) or {}
    groups = [f"{g.get('name')} ({g.get('sid')})" for g in entry.get("groups") or []]
    owners = ([f"the account {(reading.account or {}).get('sid')}"] if entry.get("direct") else []) + [f"the group {g}" for g in groups]
    text = (
        f"Remove SeDenyServiceLogonRight from {' and from '.join(owners)} in Local Security Policy (secpol.msc: User Rights"
        " Assignment, 'Deny log on as a service') or in the GPO that sets it"
    )
    if groups:
        text += f" (or take the account out of {', '.join(groups)})"
    return text + "; when a domain GPO sets it, change the GPO: the next policy refresh rewrites a local change."


def _shutdown_reason(reading: Reading) -> str:
    """Why the agent shuts the host down when the service stops the worker (its resolved no_shutdown is false)."""
    shutdown = reading.settings.shutdown_on_stop if reading.settings else None
    if shutdown is None or shutdown.source == "file":
        return f"{reading.config.path} sets [os] shutdown_on_stop = true"
    if shutdown.source == "default":
        return (
            f"{reading.config.path} does not set [os] shutdown_on_stop, and the agent's default then is to shut the host down"
            " (no_shutdown = false)"
        )
    variable = reading.environment[str(shutdown.variable).upper()]
    return f"{variable.name}={variable.value} in {variable.where} tells the agent to shut the host down"


def no_shutdown_fix(reading: Reading) -> str:
    """How to keep the agent from shutting the host down, where its resolved no_shutdown is decided:
    worker.toml's [os] shutdown_on_stop, or DEADLINE_WORKER_NO_SHUTDOWN wherever it is defined, which
    overrides the file (so setting the file alone would change nothing)."""
    shutdown = reading.settings.shutdown_on_stop if reading.settings else None
    if shutdown is None or shutdown.source in ("file", "default") or not shutdown.variable:
        return "set [os] shutdown_on_stop = false in worker.toml (deadline_cloud.cmf.worker_toml)"
    variable = str(shutdown.variable).upper()
    then = (
        "worker.toml's [os] shutdown_on_stop = false then decides"
        if file_setting(reading.config.document, "os", "shutdown_on_stop") is False
        else "then set [os] shutdown_on_stop = false in worker.toml (deadline_cloud.cmf.worker_toml)"
    )
    text = _env_fix(reading, variable)
    return f"{variable} decides over worker.toml: {text[:1].lower()}{text[1:-1]}; {then}"


def grant_fix(account: dict, right: str, leaving: tuple[str, ...] = ()) -> str:
    """How the account comes to hold ``right`` (once out of the groups ``leaving``): a direct grant where no
    domain policy defines the right; else through the policy, since a direct grant would not outlive its
    next refresh: add the account to it, or apply it (gpupdate) where it lists the account already."""
    who = f"{account.get('name')} ({account.get('sid')})"
    holding = user_rights.policy_holding(account, right, leaving)
    setting = f"'{user_rights.display_name(right)}' ({right})"
    if holding is None:
        return f"grant {right} to {account.get('sid')} directly (deadline_cloud.cmf.win_user_rights)"
    if holding == user_rights.POLICY_TAKES:
        return policy_gap_fix(PolicyGap(right, ()), who)
    if holding == user_rights.POLICY_UNKNOWN:
        return (
            f"{token_groups_fix(account)}: a domain Group Policy sets {setting} on"
            f" this computer, and whether {who} holds it through one of its domain groups cannot be told until they can be read"
        )
    return (
        f"run gpupdate /force on the host, then run again: the domain Group Policy that sets {setting} lists {who} or a group"
        " it keeps, but this computer has not applied it yet (a direct grant would not outlive the next refresh)"
    )


def agent_needs(right: str, shuts_down: bool) -> bool:
    """Whether the agent itself needs ``right`` outside Administrators: the logon right always, the
    shutdown right when it shuts the host down (its resolved no_shutdown is false)."""
    return right == SERVICE_LOGON_RIGHT or (shuts_down and right == SHUTDOWN_PRIVILEGE)


def _shuts_down(reading: Reading) -> bool:
    return bool(reading.settings and reading.settings.shutdown_on_stop.value is True)


def _policy_applies(reading: Reading) -> bool:
    return bool(reading.account) and bool(reading.service.get("exists")) and _sid_of(reading.account) not in BUILTIN_SERVICE_ACCOUNTS


def _policy_blockers(reading: Reading) -> list[PolicyGap]:
    """The logon right a policy takes from the account (or denies it) at the next refresh, as it is now."""
    return policy_gaps(reading.account or {}, [SERVICE_LOGON_RIGHT]) if _policy_applies(reading) else []


def _final_rights(reading: Reading) -> list[str]:
    """The rights the account is to hold outside Administrators (see Reading.final_rights)."""
    if reading.final_rights is not None:
        return list(reading.final_rights)
    return [*FINAL_STATE_RIGHTS, *([SHUTDOWN_PRIVILEGE] if _shuts_down(reading) else [])]


def _policy_warnings(reading: Reading) -> list[PolicyGap]:
    """The other rights of the final state a policy takes from the account once it is out of Administrators."""
    if not _policy_applies(reading):
        return []
    rights = _final_rights(reading)
    now = {(gap.right, gap.deny) for gap in _policy_blockers(reading)}
    return [gap for gap in policy_gaps(reading.account or {}, rights, [ADMINISTRATORS]) if (gap.right, gap.deny) not in now]


def policy_gap_message(account: dict, gap: PolicyGap, shuts_down: bool, service: str = DEFAULT_SERVICE) -> str:
    """The finding (and the role's refusal) for a right a domain policy takes from the account."""
    who = f"{account.get('name')} ({account.get('sid')})"
    text = policy_gap_text(gap, who)
    if not gap.deny and not policy_gaps(account, [gap.right]):
        text += " (it holds the right now only through Administrators, which it is to leave)"
    if gap.right == user_rights.DENY_SERVICE_LOGON_RIGHT:
        text += (
            f"; while it is denied that logon, the Service Control Manager cannot start {service} under the account"
            f" ('{SERVICE_LOGON_ERROR}')"
        )
    elif gap.deny:
        text += (
            f"; it overrides {user_rights.DENY_OVERRIDES.get(gap.right)}, one of the rights the account is to hold outside"
            " Administrators (WORKER_AGENT_USER jobs do not need it)"
        )
    elif gap.right == SERVICE_LOGON_RIGHT:
        text += f"; without it the Service Control Manager cannot start {service} under the account ('{SERVICE_LOGON_ERROR}')"
    elif agent_needs(gap.right, shuts_down):
        text += "; without it the agent's shutdown fails when the service stops the worker (the agent only logs it)"
    else:
        text += "; WORKER_AGENT_USER jobs do not need it, but it is one of the rights the account is to hold outside Administrators"
    after = "A local change of the deny right" if gap.deny else "A right granted through the LSA"
    return text[:1].upper() + text[1:] + f". {after} would not outlive the next refresh."


def policy_gap_fix_text(account: dict, gap: PolicyGap, shuts_down: bool, no_shutdown: str = "") -> str:
    """The fix of a right a domain policy takes from the account; ``no_shutdown``: how to keep the agent from
    shutting the host down (no_shutdown_fix), where the agent's shutdown is what needs the right."""
    fix = policy_gap_fix(gap, f"{account.get('name')} ({account.get('sid')})")
    if gap.right == SHUTDOWN_PRIVILEGE:
        fix += f"; or, if the host must not shut down, {no_shutdown or 'set [os] shutdown_on_stop = false in worker.toml'}"
    elif not gap.deny and not agent_needs(gap.right, shuts_down):
        fix += f"; or leave {gap.right} out of deadline_worker_agent_user_rights (WORKER_AGENT_USER jobs do not need it)"
    return fix[:1].upper() + fix[1:] + "."


def _policy_message(reading: Reading, gap: PolicyGap) -> str:
    return policy_gap_message(reading.account or {}, gap, _shuts_down(reading), _service_name(reading))


def _policy_fix(reading: Reading, gap: PolicyGap) -> str:
    return policy_gap_fix_text(reading.account or {}, gap, _shuts_down(reading), no_shutdown_fix(reading))


def _policy_unreadable(reading: Reading) -> bool:
    return bool(reading.account) and policy_rights(reading.account) is None


def _account_error_code(reading: Reading) -> str | None:
    return (reading.raw.get("account_error") or {}).get("code")


def _account_error_text(reading: Reading) -> str:
    """The host's text without its final stop (Windows' own texts end with one), to go inside a sentence."""
    return str((reading.raw.get("account_error") or {}).get("message") or "").rstrip(".")


def _account_not_read(reading: Reading) -> str | None:
    """Why the account was not read, or None when it was: "absent" (it does not exist as named),
    "unreachable" (no domain controller answered), or "unreadable" (any other cause, such as access
    denied or an LSA failure, which creating an account would not fix)."""
    if reading.account is not None or not reading.raw.get("account_error"):
        return None
    code = _account_error_code(reading)
    if code == DOMAIN_UNREACHABLE:
        return "unreachable"
    return "absent" if code in (ACCOUNT_NOT_FOUND, ACCOUNT_AMBIGUOUS, None) else "unreadable"


def _administrators_entry(account: dict) -> dict | None:
    """The account's membership in Administrators (S-1-5-32-544, whatever its local name), or None."""
    return next((g for g in account.get("groups") or [] if same_sid(g.get("sid"), ADMINISTRATORS)), None)


def _admin_text(reading: Reading) -> str:
    """How the account is in Administrators: directly, through which groups, or both."""
    account = reading.account or {}
    group = _administrators_entry(account)
    if group is None:
        return ""
    ways = [] if group.get("indirect") else ["directly"]
    through = carriers(account, {"sid": group["sid"], "name": group.get("name")})
    ways += [f"through {', '.join(through)}"] if through else []
    return f" ({' and '.join(ways)})" if through else ""


def stale_admin_token(reading: Reading) -> bool:
    """The running agent's process still has Administrators in its token although its account is no
    longer in that group (left it after the service started: a process keeps the token it started
    with). Only where the host read the token (``token_administrators`` true) and knows the account's
    whole group closure; LocalSystem's token always holds Administrators (AGENT_USER_IS_SYSTEM)."""
    service, account = reading.service, reading.account
    if not account or service.get("state") != "running" or service.get("token_administrators") is not True:
        return False
    logon = service.get("account_sid")
    if (logon and not same_sid(logon, _sid_of(account))) or same_sid(_sid_of(account), LOCAL_SYSTEM) or not token_groups_known(account):
        return False  # another account's reading, or one whose groups cannot be told
    return _administrators_entry(account) is None


def _admin_fix(reading: Reading) -> str:
    """Give the account the rights of the final state outside Administrators (each as it lasts: directly, or
    through the policy that defines it), then take it out of Administrators where it is in it (directly, or
    through the groups named)."""
    account = reading.account or {}
    needed = _final_rights(reading)
    direct = {right.casefold() for right in held_rights(account.get("rights") or [])}
    holding = {right: user_rights.policy_holding(account, right, (ADMINISTRATORS,)) for right in needed}
    grants = [right for right in needed if holding[right] is None and right.casefold() not in direct]
    through_policy = [right for right in needed if holding[right] in (user_rights.POLICY_TAKES, user_rights.POLICY_UNKNOWN)]
    steps = [f"grant the account {', '.join(grants)} directly (deadline_cloud.cmf.win_user_rights)"] if grants else []
    steps += [grant_fix(account, right, (ADMINISTRATORS,)).removesuffix(", then run again") for right in through_policy]
    if SHUTDOWN_PRIVILEGE in grants + through_policy:
        steps.append(f"{SHUTDOWN_PRIVILEGE} is needed only while the agent shuts the host down: to keep it from that instead, {no_shutdown_fix(reading)}")
    group = _administrators_entry(account) or {"sid": ADMINISTRATORS}
    through = carriers(account, {"sid": group["sid"], "name": group.get("name")})
    administrators = str(group.get("name") or "Administrators")
    if group.get("indirect"):
        leave = f"take it out of {', '.join(through) or 'the group it is a member through'} (or that group out of {administrators})"
    elif through:
        leave = f"remove it from {administrators}, and take it out of {', '.join(through)} (or that group out of {administrators})"
    else:
        leave = f"remove it from {administrators}"
    if not steps:
        return _capitalized(leave) + ": it holds the rights it needs outside Administrators already."
    return _capitalized("; ".join(steps)) + f"; then {leave}."


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def _refused_variable(reading: Reading, variable: str) -> bool:
    """A variable whose value the agent refuses: it does not start at all (AGENT_STARTUP_ERROR says so),
    which is the cause to name rather than what the value would have meant."""
    return invalid_environment_value(reading.environment, variable) is not None


def _opt_in(reading: Reading) -> ResolvedSetting | None:
    return reading.settings.run_jobs_as_agent_user if reading.settings else None


def _job_user(reading: Reading) -> ResolvedSetting | None:
    return reading.settings.windows_job_user if reading.settings else None


_ENCODING_TEXT = {
    "utf-8-bom": "starts with a UTF-8 byte order mark",
    "utf-16": "is UTF-16 (what Windows PowerShell's Out-File and > write)",
    "invalid": "is not valid UTF-8",
}
_IMPERSONATION_ERROR = ("os -> __root__", REMOVED_KEYS[("os", "impersonation")])


def _parse_error_where(reading: Reading) -> str:
    error = reading.config.parse_error
    return f" at line {error.line}, column {error.column}" if error is not None and error.line else ""


def _line_endings(reading: Reading) -> str | None:
    """CR-only (or lone CR) line endings, which is why the file does not parse; None otherwise."""
    decoded = reading.config.decoded
    return lone_carriage_returns(decoded.text) if decoded is not None and decoded.text is not None else None


def _schema_refusals(reading: Reading) -> tuple[str, ...] | None:
    """The model's refusals other than the impersonation key (one finding names them all)."""
    schema = reading.config.schema
    refusals = tuple(f"{loc}: {msg}" for loc, msg in schema.problems if (loc, msg) != _IMPERSONATION_ERROR) if schema else ()
    return refusals or None


def _opt_in_off_as_a_consequence(reading: Reading) -> bool:
    """The opt-in is off only because of another blocker, which names the cause and its fix: worker.toml
    is missing or the agent refuses its model (CONFIG_MISSING, CONFIG_INVALID: the file's own opt-in is not
    what the agent would load), or the file sets it and a variable turns it off (ENV_OVERRIDE,
    ENV_USER_VARIABLE). Where the file lacks it as well, the opt-in is a cause of its own."""
    if not reading.config.exists or _schema_refusals(reading):
        return True
    opt_in = _opt_in(reading)
    return (
        opt_in is not None
        and opt_in.source in ("machine", "service", "user")
        and file_setting(reading.config.document, "os", "run_jobs_as_agent_user") is True
    )


def _opt_in_off_source(reading: Reading, opt_in: ResolvedSetting) -> str:
    return {
        "default": "it is not set anywhere, and the default is false",
        "file": f"{reading.config.path} sets [os] run_jobs_as_agent_user = false",
        "machine": f"the machine variable {opt_in.variable} turns it off",
        "user": f"the service account's user variable {opt_in.variable} turns it off, if the service sees it",
        "service": f"the service's Environment variable {opt_in.variable} turns it off",
    }[opt_in.source]


def _user_variable_settings(reading: Reading) -> list[ResolvedSetting]:
    """The resolved settings that come from the service account's own user variables."""
    if reading.settings is None:
        return []
    settings = (reading.settings.run_jobs_as_agent_user, reading.settings.windows_job_user, reading.settings.shutdown_on_stop)
    return [
        setting
        for setting in settings
        if setting.source == "user" and setting.variable and not _refused_variable(reading, str(setting.variable).upper())
    ]


def _user_variable_blocks(setting: ResolvedSetting) -> bool:
    """A user variable that turns the opt-in off or sets a job user stops WORKER_AGENT_USER jobs (if the service sees it)."""
    if setting.name == "run_jobs_as_agent_user":
        return setting.value is not True
    return setting.name == "windows_job_user" and setting.value is not None


def _user_variable_message(reading: Reading, setting: ResolvedSetting) -> str:
    definition = reading.environment[str(setting.variable).upper()]
    return (
        f"{definition.name}={definition.value} is a user variable of the service account, in {definition.key}; it would set"
        f" {setting.name} to {setting.value!r} over worker.toml (and over machine variables). Whether the service process"
        " gets its account's user variables is not verified here: Windows builds a service's environment from the machine"
        " variables, then, for a user account and as far as documented, that user's variables, then the service's own Environment value."
    )


def _refused_variables(reading: Reading) -> list[str]:
    """The agent's variables whose values it refuses (so it does not start), as defined on the host."""
    names = [variable for variable in ENVIRONMENT_SETTINGS if _refused_variable(reading, variable)]
    not_json, refused = capabilities_from_environment(reading.environment)
    if not_json or refused:
        names.append(CAPABILITIES_VARIABLE)
    return names


def _startup_fix(reading: Reading) -> str:
    variables = _refused_variables(reading)
    if not variables:
        return "Correct the setting the error names, in worker.toml or the environment."
    fixes = [_env_fix(reading, variable) for variable in variables]
    return f"Give {', '.join(variables)} a value the agent accepts, or remove it: " + " ".join(fixes)


def _startup_explained(reading: Reading) -> bool:
    """A blocker that explains a failed start already fires (so AGENT_STARTUP_ERROR stays quiet)."""
    return any(rule.subjects(reading) for rule in RULES if rule.id in _STARTUP_FINDINGS)


RULES: tuple[Rule, ...] = (
    Rule(
        "SERVICE_MISSING",
        "blocker",
        lambda r: not r.service.get("exists"),
        lambda r, _: f"The service {_service_name(r)} does not exist: nothing runs the worker agent.",
        lambda r, _: "Install the service with install-deadline-worker (its default service name is DeadlineWorker), or set the service name.",
    ),
    Rule("AGENT_VERSION_UNSUPPORTED", "blocker", _version_problem, lambda r, why: why, lambda r, _: _version_fix(r)),
    Rule(
        "CONFIG_NOT_LOADED",
        "warning",
        config_changed_since_start,
        lambda r, _: f"{r.config.path} was written at {(r.raw.get('config') or {}).get('modified_at')}, after the running agent"
        f" started ({r.service.get('started_at')}): the agent reads worker.toml only when it starts, so it still runs"
        " with what the file held before.",
        lambda r, _: f"Restart the {_service_name(r)} service (deadline_cloud.cmf.worker_agent_service).",
    ),
    Rule(
        "ACCOUNT_MISSING",
        "blocker",
        lambda r: _account_not_read(r) == "absent",
        lambda r, _: f"The agent's account cannot be read: {_account_error_text(r)}. The service cannot log on"
        " as an account that does not resolve, and its groups and rights cannot be checked.",
        lambda r, _: "Create the account (install-deadline-worker creates deadline-worker), or name the account the service logs on as.",
    ),
    Rule(
        "ACCOUNT_UNREADABLE",
        "blocker",
        lambda r: _account_not_read(r) == "unreadable",
        lambda r, _: f"The agent's account cannot be read: {_account_error_text(r)}. Its groups and rights"
        f" cannot be checked ({_account_error_code(r)}), and nothing can be changed safely until they can.",
        lambda r, _: "Correct what the error names on the host (the account Ansible connects as must be an administrator), then run again.",
    ),
    Rule(
        "DOMAIN_UNREACHABLE",
        "blocker",
        lambda r: _account_not_read(r) == "unreachable",
        lambda r, _: f"The agent's account cannot be resolved: {_account_error_text(r)}. Its groups and rights cannot"
        " be checked, and nothing can be changed safely, until a domain controller answers.",
        lambda r, _: _capitalized(DOMAIN_UNREACHABLE_FIX) + ".",
    ),
    Rule(
        "DOMAIN_UNREACHABLE",
        "security",
        lambda r: bool(r.account) and not token_groups_known(r.account) and token_groups_error_code(r.account) == DOMAIN_UNREACHABLE,
        lambda r, _: _capitalized(token_groups_unknown_message(r.account or {})) + ".",
        lambda r, _: _capitalized(token_groups_fix(r.account or {})) + ".",
    ),
    Rule(
        "TOKEN_GROUPS_UNKNOWN",
        "security",
        lambda r: bool(r.account) and not token_groups_known(r.account) and token_groups_error_code(r.account) != DOMAIN_UNREACHABLE,
        lambda r, _: _capitalized(token_groups_unknown_message(r.account or {})) + ".",
        lambda r, _: _capitalized(token_groups_fix(r.account or {})) + ".",
    ),
    Rule(
        "GROUP_POLICY_UNREADABLE",
        "warning",
        _policy_unreadable,
        lambda r, _: f"The rights a domain Group Policy sets on this computer cannot be read ({(r.account or {}).get('group_policy', {}).get('error')}):"
        f" whether the rights {_account_text(r)} holds outlive the next policy refresh cannot be told.",
        lambda r, _: "Let the resultant set of policy be read (root\\rsop\\computer, with 'Turn off Resultant Set of Policy logging'"
        " not enabled; gpupdate /force records it again), then run again.",
    ),
    Rule("RIGHT_OWNED_BY_POLICY", "blocker", _policy_blockers, _policy_message, _policy_fix),
    Rule("RIGHT_OWNED_BY_POLICY", "warning", _policy_warnings, _policy_message, _policy_fix),
    Rule(
        "SERVICE_DISABLED",
        "blocker",
        lambda r: bool(r.service.get("exists")) and str(r.service.get("start_mode") or "").casefold() == "disabled",
        lambda r, _: f"The service {_service_name(r)} is disabled: the Service Control Manager refuses to start it (Win32 error 1058),"
        " so a restart stops the agent for good, and it does not run after a reboot.",
        lambda r, _: f"Set the startup type of {_service_name(r)} to Automatic (Set-Service -Name {_service_name(r)} -StartupType"
        " Automatic), then run again.",
    ),
    Rule(
        "ACCOUNT_DISABLED",
        "blocker",
        lambda r: bool(r.account) and r.account.get("enabled") is False,
        lambda r, _: f"{_account_text(r)} is disabled: the Service Control Manager cannot log {_service_name(r)} on as it"
        f" ('{SERVICE_LOGON_ERROR}', Win32 error 1069), so the agent does not start.",
        lambda r, _: f"Enable the account (Enable-LocalUser -SID {(r.account or {}).get('sid')}, or in the domain for a domain"
        " account), then run again.",
    ),
    Rule(
        "SERVICE_LOGON_RIGHT_MISSING",
        "blocker",
        lambda r: bool(r.account)
        and bool(r.service.get("exists"))
        and _sid_of(r.account) not in BUILTIN_SERVICE_ACCOUNTS
        and lacks_right(r.account, r.rights, SERVICE_LOGON_RIGHT),
        lambda r, _: f"{_account_text(r)} lacks SeServiceLogonRight (Log on as a service), directly or"
        f" through a group of its token: the Service Control Manager cannot start {_service_name(r)} under it"
        f" ('{SERVICE_LOGON_ERROR}').",
        lambda r, _: _capitalized(grant_fix(r.account or {}, SERVICE_LOGON_RIGHT)) + ".",
    ),
    Rule(
        "RIGHT_DENIED",
        "blocker",
        lambda r: bool(r.account) and bool(r.service.get("exists")) and DENY_SERVICE_LOGON_RIGHT in r.rights,
        lambda r, _: f"{_account_text(r)} holds SeDenyServiceLogonRight (Deny log on as a service) {_holders(r, DENY_SERVICE_LOGON_RIGHT)},"
        " which overrides SeServiceLogonRight"
        + (f" (held {_holders(r, SERVICE_LOGON_RIGHT)})" if SERVICE_LOGON_RIGHT in r.rights else "")
        + f": the Service Control Manager cannot start {_service_name(r)} under it ('{SERVICE_LOGON_ERROR}'),"
        " and granting SeServiceLogonRight does not change that.",
        lambda r, _: _deny_fix(r),
    ),
    Rule(
        "CONFIG_MISSING",
        "blocker",
        lambda r: not r.config.exists,
        lambda r, _: f"{r.config.path} does not exist: the agent reads settings only from its environment, and without"
        " farm_id and fleet_id it does not start.",
        lambda r, _: "Run install-deadline-worker, or restore worker.toml from worker.toml.bak or the agent's worker.toml.example.",
    ),
    Rule(
        "CONFIG_ENCODING",
        "blocker",
        lambda r: r.config.exists and r.config.encoding != "utf-8",
        lambda r, _: f"{r.config.path} {_ENCODING_TEXT[r.config.encoding or 'invalid']}; the agent reads it as strict UTF-8 and stops:"
        f" {r.config.decoded.agent_error if r.config.decoded else None}",
        lambda r, _: "Save worker.toml as UTF-8 without a BOM (deadline_cloud.cmf.worker_toml rewrites it so;"
        " in Windows PowerShell 5.1 write bytes, not Set-Content -Encoding UTF8).",
    ),
    Rule(
        "CONFIG_INVALID",
        "blocker",
        lambda r: r.config.parse_error is not None,
        lambda r, _: (
            f"{r.config.path} has {_line_endings(r)}, which TOML does not allow"
            if _line_endings(r)
            else f"{r.config.path} is not valid TOML{_parse_error_where(r)}"
        )
        + f": the agent stops with 'Configuration file ({r.config.path}) is not valid TOML:"
        f" {r.config.parse_error.message if r.config.parse_error else ''}'.",
        lambda r, _: "Save worker.toml with CRLF (Windows) or LF line endings." if _line_endings(r) else f"Correct the TOML syntax{_parse_error_where(r)}.",
    ),
    Rule(
        "LEGACY_IMPERSONATION_KEY",
        "blocker",
        lambda r: r.config.schema is not None and _IMPERSONATION_ERROR in r.config.schema.problems,
        lambda r, _: f"[os] impersonation is present in {r.config.path}; the agent refuses to start: '{_IMPERSONATION_ERROR[1]}'",
        lambda r, _: "Remove [os] impersonation (keep it as a comment) and set [os] run_jobs_as_agent_user = true.",
    ),
    Rule(
        "CONFIG_INVALID",
        "blocker",
        _schema_refusals,
        lambda r, refusals: f"The agent refuses {r.config.path} (Parsing errors loading configuration file): " + "; ".join(refusals) + ".",
        lambda r, _: "Add the missing tables ([worker], [aws], [logging], [os], [capabilities] with"
        " [capabilities.amounts] and [capabilities.attributes]) and give each key the agent's type;"
        " [capabilities.amounts] and [capabilities.attributes] hold only capability names"
        ' ("amount.<name>" = a number >= 0, "attr.<name>" = a list of strings): move any other key to its own table.',
    ),
    Rule(
        "MISPLACED_KEY",
        "warning",
        lambda r: list(r.config.schema.misplaced) if r.config.schema is not None else [],
        lambda r, m: f"{m[0]} sits in [{m[1]}] of {r.config.path}; the agent reads it only under [{m[2]}]"
        + (" in every release, so it ignores it there." if KNOWN_KEYS[m[0]].table_is_stable else " in this release, and ignores it there."),
        lambda r, m: f"Move {m[0]} under [{m[2]}].",
    ),
    Rule(
        "AGENT_OPT_IN_MISSING",
        "blocker",
        lambda r: (opt_in := _opt_in(r)) is not None
        and opt_in.value is not True
        and not _refused_variable(r, OPT_IN_VARIABLE)
        and not _opt_in_off_as_a_consequence(r),
        lambda r, _: f"run_jobs_as_agent_user resolves to false ({_opt_in_off_source(r, r.settings.run_jobs_as_agent_user)}):"
        " the agent fails every WORKER_AGENT_USER job on Windows.",
        # A variable that turns it off wins over the file: setting the file alone would change nothing.
        lambda r, _: (
            _env_fix(r, str(r.settings.run_jobs_as_agent_user.variable).upper())[:-1]
            + "; then set [os] run_jobs_as_agent_user = true in worker.toml (deadline_cloud.cmf.worker_toml) and restart the service."
            if r.settings.run_jobs_as_agent_user.source in ("machine", "service", "user") and r.settings.run_jobs_as_agent_user.variable
            else "Set [os] run_jobs_as_agent_user = true in worker.toml (deadline_cloud.cmf.worker_toml) and restart the service."
        ),
    ),
    Rule(
        "ENV_OVERRIDE",
        "blocker",
        lambda r: (opt_in := _opt_in(r)) is not None
        and opt_in.source in ("machine", "service")
        and opt_in.value is not True
        and not _refused_variable(r, OPT_IN_VARIABLE),
        lambda r, _: f"{r.settings.run_jobs_as_agent_user.variable}={r.environment[OPT_IN_VARIABLE].value} in"
        f" {r.environment[OPT_IN_VARIABLE].where} overrides worker.toml and turns run_jobs_as_agent_user off.",
        lambda r, _: _env_fix(r, OPT_IN_VARIABLE),
    ),
    Rule(
        "ENV_OVERRIDE",
        "blocker",
        lambda r: (job_user := _job_user(r)) is not None
        and job_user.source in ("machine", "service")
        and not _refused_variable(r, JOB_USER_VARIABLE),
        lambda r, _: f"{r.settings.windows_job_user.variable}={r.settings.windows_job_user.value} in"
        f" {r.environment[JOB_USER_VARIABLE].where} sets a Windows job user, overriding worker.toml.",
        lambda r, _: _env_fix(r, JOB_USER_VARIABLE),
    ),
    Rule(
        "ENV_USER_VARIABLE",
        "blocker",
        lambda r: [s for s in _user_variable_settings(r) if _user_variable_blocks(s)],
        _user_variable_message,
        lambda r, setting: _env_fix(r, setting.variable.upper()),
    ),
    Rule(
        "ENV_USER_VARIABLE",
        "warning",
        lambda r: [s for s in _user_variable_settings(r) if not _user_variable_blocks(s)],
        _user_variable_message,
        lambda r, setting: _env_fix(r, setting.variable.upper()),
    ),
    Rule(
        "JOB_USER_CONFLICT",
        "blocker",
        lambda r: (job_user := _job_user(r)) is not None
        and job_user.value is not None
        and r.settings.run_jobs_as_agent_user.value is True
        and not _refused_variable(r, JOB_USER_VARIABLE),
        lambda r, _: f"windows_job_user = {r.settings.windows_job_user.value!r} (from "
        + ("worker.toml's [os] windows_job_user" if r.settings.windows_job_user.source == "file" else f"the variable {r.settings.windows_job_user.variable}")
        + f") is set together with run_jobs_as_agent_user = true; the agent refuses to start: '{JOB_USER_CONFLICT_ERROR}'",
        lambda r, _: "Remove windows_job_user (comment it out in [os]; unset the variable if it comes from the environment).",
    ),
    Rule(
        "SHUTDOWN_RIGHT_MISSING",
        "warning",
        lambda r: r.settings is not None
        and r.settings.shutdown_on_stop.value is True
        and r.account is not None
        and lacks_right(r.account, r.rights, SHUTDOWN_PRIVILEGE),  # no deny right overrides it
        lambda r, _: f"{_shutdown_reason(r)}, but {(r.account or {}).get('name')} lacks SeShutdownPrivilege: when the service stops"
        " the worker, the agent's shutdown command fails (the agent only logs it) and the host keeps running.",
        lambda r, _: _capitalized(grant_fix(r.account or {}, SHUTDOWN_PRIVILEGE))
        + f"; or, if the host must not shut down, {no_shutdown_fix(r)}.",
    ),
    Rule(
        "AGENT_USER_IS_ADMIN",
        "security",
        lambda r: r.account is not None and _administrators_entry(r.account) is not None,
        lambda r, _: f"{_account_text(r)} is in Administrators ({ADMINISTRATORS}){_admin_text(r)}: every WORKER_AGENT_USER job runs as"
        " an administrator.",
        lambda r, _: _admin_fix(r),
    ),
    Rule(
        "AGENT_USER_IS_SYSTEM",
        "security",
        lambda r: _sid_of(r.account) == LOCAL_SYSTEM,
        lambda r, _: f"{_service_name(r)} runs as LocalSystem ({LOCAL_SYSTEM}): every WORKER_AGENT_USER job would run as SYSTEM,"
        " which holds every privilege on the host and cannot be taken out of Administrators.",
        lambda r, _: "Run the agent as a dedicated account (install-deadline-worker --user creates deadline-worker and"
        " configures the service), then converge that account.",
    ),
    Rule(
        "AGENT_TOKEN_STALE",
        "security",
        stale_admin_token,
        lambda r, _: f"The running agent ({_service_name(r)}" + (f", process {r.service['pid']}" if r.service.get("pid") else "") + ")"
        f" still runs with Administrators"
        f" ({ADMINISTRATORS}) in its token, from before {_account_text(r)} left it: a process keeps the token it started"
        " with, so jobs run as an administrator until the service restarts.",
        lambda r, _: f"Restart the {_service_name(r)} service when it is idle (converge does; deadline_cloud.cmf.worker_agent_service).",
    ),
    Rule(
        "AGENT_STARTUP_ERROR",
        "blocker",
        lambda r: not r.verdict.starts and not _startup_explained(r),
        lambda r, _: f"The agent stops at start with: {r.verdict.error}",
        lambda r, _: _startup_fix(r),
    ),
    Rule(
        "MESSAGE_IS_MISLEADING",
        "info",
        # Only an agent that gets past its configuration fails jobs with that message.
        lambda r: _would_print_admin_message(r) if r.verdict.starts else None,
        lambda r, message: f'The agent fails WORKER_AGENT_USER jobs with "{message}" That text is hard-coded: the agent never'
        " checks its privileges or group membership. Only the opt-in decides it ([os] run_jobs_as_agent_user = true,"
        " agent 0.27.3 or later); removing the account from Administrators does not change it.",
        lambda r, _: "Set [os] run_jobs_as_agent_user = true and restart the service.",
    ),
)

# Blockers that already explain a failed startup verdict.
_STARTUP_FINDINGS = frozenset(
    {
        "ACCOUNT_MISSING",
        "ACCOUNT_DISABLED",
        "SERVICE_LOGON_RIGHT_MISSING",
        "RIGHT_DENIED",
        "CONFIG_ENCODING",
        "CONFIG_INVALID",
        "CONFIG_MISSING",
        "LEGACY_IMPERSONATION_KEY",
        "JOB_USER_CONFLICT",
    }
)


def findings(reading: Reading) -> list[dict]:
    """Every rule's findings for one host, in the table's order, blockers first."""
    found = [finding for rule in RULES for finding in rule.evaluate(reading)]
    order = {severity: i for i, severity in enumerate(SEVERITIES)}
    return sorted(found, key=lambda f: order[f["severity"]])


def is_ready(found: list[dict]) -> bool:
    """A WORKER_AGENT_USER job would run once the agent loads what is on disk now."""
    return not any(f["severity"] == "blocker" for f in found)


def _config_entries(analysis: ConfigAnalysis) -> dict:
    """For every key the agent knows, by table, the value it would load (named ``entries``: in a
    template, ``x.config.values`` would be the dict's own method)."""
    entries: dict[str, dict] = {}
    for known in KNOWN_KEYS.values():
        entries.setdefault(known.table, {})[known.key] = file_setting(analysis.document, known.table, known.key)
    return entries


def _counted(found: list[dict], severity: str) -> str | None:
    """"2 blockers (AGENT_OPT_IN_MISSING, ENV_OVERRIDE)", or None when there is none of that severity."""
    of_kind = [f["id"] for f in found if f["severity"] == severity]
    if not of_kind:
        return None
    plural = "" if len(of_kind) == 1 else "s"
    return f"{len(of_kind)} {severity}{plural} ({', '.join(dict.fromkeys(of_kind))})"


def verdict_line(found: list[dict]) -> str:
    """One line for a person: ready or not, and the findings that say why."""
    if not is_ready(found):
        return f"not ready: {_counted(found, 'blocker')}"
    others = [text for text in (_counted(found, "security"), _counted(found, "warning")) if text]
    return "ready: a WORKER_AGENT_USER job would run" + (f"; also {', '.join(others)}" if others else "")


def describe(raw: dict, final_rights: tuple[str, ...] | None = None) -> dict:
    """worker_agent_info's result for one reading of a host; ``final_rights``: see Reading."""
    reading = read_host(raw, final_rights)
    found = findings(reading)
    config = reading.config
    account = reading.account
    ready = is_ready(found)
    return {
        "ready": ready,
        "verdict": verdict_line(found),
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
            "token_administrators": reading.service.get("token_administrators"),
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
            "token_groups": [{"name": g.get("name"), "sid": g.get("sid"), "scope": g.get("scope")} for g in token_groups(account)],
            "token_groups_known": token_groups_known(account),
            "policy_rights": policy_rights(account),
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
            "entries": _config_entries(config),
        },
        "environment": {
            name: {"value": value.value, "source": value.source}
            for name, value in sorted(reading.environment.items())
            if is_agent_variable(name)
        },
        "settings": reading.settings.as_dict() if reading.settings else None,
        "startup": reading.verdict.as_dict(),
        "findings": found,
    }


def read_agent_info(host: Any, service: str, config_path: str = CONFIG_PATH, account: str | None = None) -> dict:
    """worker_agent_info's result from ``host`` (a plugin_utils._host.Host), in one remote call."""
    raw = host.call("read_agent_info", service=service, config_path=config_path, account=account or "")
    return result_of(raw)


def result_of(raw: dict) -> dict:
    """worker_agent_info's result for one host answer (of read_agent_info, or the reading that
    control_service returns after a restart)."""
    result = describe(raw)
    sessions = raw.get("sessions") or {}
    result["sessions"] = {
        "busy": bool(sessions.get("busy")),
        "count": int(sessions.get("count") or 0),
        "ids": list(sessions.get("ids") or []),
        "worker_id": sessions.get("worker_id"),
    }
    if raw.get("account_error"):
        result["account_error"] = raw["account_error"]
    # The host's answer as read: the collection's other modules take it as their `reading`, so
    # that a role that has read the host once need not read it again (one remote call each saved).
    result["reading"] = raw
    return result
