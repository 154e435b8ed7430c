# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ground truth: what the real worker agent (deadline-cloud-worker-agent, a test dependency)
makes of a worker.toml and an environment, with its own ConfigFile.load and WorkerSettings."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from unittest import mock

# config.py Configuration._validate (its win32 branch, which Linux never runs)
JOB_USER_CONFLICT_ERROR = "Cannot specify a windows job user when the option to run jobs as the agent user is enabled."


@contextmanager
def _agent_environment(config: Path, environment: dict[str, str]):
    from deadline_worker_agent.config import config_file

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DEADLINE_WORKER_", "DEADLINE_CLOUD_"))}
    clean.update(environment)
    with mock.patch.dict(config_file.DEFAULT_CONFIG_PATH, {sys.platform: config}), mock.patch.dict(os.environ, clean, clear=True):
        yield


def load_config_file(data: bytes, folder: Path):
    """ConfigFile.load on these bytes: the model, or the agent's exception."""
    from deadline_worker_agent.config.config_file import ConfigFile

    path = folder / "worker.toml"
    path.write_bytes(data)
    return ConfigFile.load(path)


def worker_settings(data: bytes | None, folder: Path, environment: dict[str, str] | None = None):
    """WorkerSettings() as the service builds it (no CLI arguments), from these bytes (None: no
    file) and these environment variables; raises what the agent raises."""
    from deadline_worker_agent.config.settings import WorkerSettings

    path = folder / "worker.toml"
    if data is None:
        path.unlink(missing_ok=True)
    else:
        path.write_bytes(data)
    with _agent_environment(path, environment or {}):
        return WorkerSettings()


@dataclass(frozen=True)
class RealAgent:
    """What the real agent does at start: whether it gets past its configuration, its error text,
    and the two settings that decide WORKER_AGENT_USER jobs."""

    starts: bool
    error: str | None
    run_jobs_as_agent_user: bool | None = None
    windows_job_user: str | None = None
    no_shutdown: bool | None = None  # false: the agent shuts the host down when the service stops the worker


def validation_text(error) -> str:
    """Configuration.load's own rendering of WorkerSettings' ValidationError."""
    text = "Configuration is not valid. Validation errors:\n\n"
    for loc, entries in groupby(error.errors(), lambda err: err["loc"]):
        text += ".".join(str(c) for c in loc) + ": " + ", ".join(e["msg"] for e in entries) + "\n"
    return text


def real_agent(data: bytes | None, folder: Path, environment: dict[str, str] | None = None) -> RealAgent:
    """The agent's start under its Windows service (no CLI arguments) on these bytes and variables.

    WorkerSettings reads the file and the environment. Configuration.__init__'s win32 branch and
    _validate never see windows_job_user on Linux, so their checks are reproduced from the
    WorkerSettings values they read (config/config.py): a domain job user (``\\`` or ``@``,
    win_user.is_domain_user) needs windows_job_user_password_arn; the job user beside
    run_jobs_as_agent_user is refused; and _validate's interval check. (The check that the job user
    is not the agent's own account needs the Windows account and is left out.)
    """
    from deadline_worker_agent.config.errors import ConfigurationError
    from pydantic.v1 import ValidationError
    from pydantic.v1.env_settings import SettingsError

    try:
        settings = worker_settings(data, folder, environment)
    except ConfigurationError as error:
        return RealAgent(False, str(error))
    except ValidationError as error:
        return RealAgent(False, validation_text(error))
    except (UnicodeDecodeError, SettingsError) as error:  # not ConfigurationErrors: entrypoint's generic handler
        return RealAgent(False, str(error))
    job_user = settings.windows_job_user
    if job_user is not None and ("\\" in job_user or "@" in job_user) and not settings.windows_job_user_password_arn:
        return RealAgent(
            False,
            f"Domain user '{job_user}' requires 'windows_job_user_password_arn' "
            "to be set. Domain user passwords must be managed externally via Secrets Manager.",
        )
    if settings.run_jobs_as_agent_user and job_user is not None:
        return RealAgent(False, JOB_USER_CONFLICT_ERROR)
    if settings.host_metrics_logging_interval_seconds <= 0:
        return RealAgent(
            False,
            f"Host metrics logging interval must be a positive number, but got: {settings.host_metrics_logging_interval_seconds!r}",
        )
    return RealAgent(True, None, settings.run_jobs_as_agent_user, settings.windows_job_user, settings.no_shutdown)


def pydantic_errors(text: str) -> tuple[str, list[tuple[str, str]]]:
    """The header and each (location, message) of a rendered pydantic v1 ValidationError, without
    the "(type=...)" tail pydantic adds to each message."""
    lines = text.split("\n")[1:]
    pairs = [(lines[i], lines[i + 1].strip().rsplit(" (type=", 1)[0]) for i in range(1, len(lines) - 1, 2)]
    return lines[0], pairs


# The agent's account as a worker that the agent would accept reports it: out of Administrators,
# holding the rights it needs directly.
ACCOUNT = {
    "sid": "S-1-5-21-3623811015-3361044348-30300820-1001",
    "name": "WORKER-01\\deadline-worker",
    "domain": "WORKER-01",
    "type": "user",
    "groups": [{"name": "Users", "sid": "S-1-5-32-545"}],
    "rights": ["SeServiceLogonRight", "SeAssignPrimaryTokenPrivilege", "SeIncreaseQuotaPrivilege", "SeShutdownPrivilege"],
    "group_rights": {"S-1-5-32-545": []},
}


def host_reading(path: str, data: bytes | None, env: dict[str, str], state: str = "running") -> dict:
    """What read_agent_info returns for a worker with these worker.toml bytes (None: no file) and
    these variables in the service's own Environment."""
    import base64

    return {
        "agent": {"version": "0.33.6", "location": "site-packages", "python": "python.exe"},
        "service": {
            "name": "DeadlineWorker",
            "exists": True,
            "state": state,
            "start_mode": "auto",
            "account": ".\\deadline-worker",
            "environment": ["AWS_DEFAULT_REGION=us-west-2", *(f"{k}={v}" for k, v in env.items())],
        },
        "machine_environment": {},
        "account": ACCOUNT,
        "config": {"path": path, "exists": data is not None, "content": base64.b64encode(data or b"").decode()},
    }
