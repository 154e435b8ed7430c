# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Busy, as the service shows it (optional): the AWS Deadline Cloud API's view of one worker.

The host tells from its own processes whether the agent runs a session now (read_agent_info's
``sessions``). Where the controller has boto3 and AWS credentials, the service can confirm it:
``GetWorker(farmId, fleetId, workerId).status`` (RUNNING: tasks assigned; IDLE: none) and
``ListSessionsForWorker`` (a session whose ``lifecycleStatus`` is not ENDED is work in hand).
The farm and fleet ids come from worker.toml's ``[worker]``, the worker id from the host's
worker.json.

Nothing here raises for a controller without boto3, without credentials or a region, for ids
not known, or for an API that refuses: the view then says ``checked: false`` and why, and the
host's own view decides. When both answer and disagree, busy wins: a restart never interrupts
work that either side sees.

Pure Python, no Ansible imports.

Internal to this collection: not a public API; it may change in any release.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

SERVICE_NAME = "deadline"  # botocore's service model, API version 2023-10-12

# WorkerStatus in botocore's model: CREATED, STARTED, STOPPING, STOPPED, NOT_RESPONDING,
# NOT_COMPATIBLE, RUNNING, IDLE. Only RUNNING says by itself that tasks are assigned; for the
# others the worker's sessions decide (a NOT_RESPONDING worker may still hold open sessions).
BUSY_STATUSES = frozenset({"RUNNING"})
# SessionLifecycleStatus: STARTED, UPDATE_IN_PROGRESS, UPDATE_SUCCEEDED, UPDATE_FAILED, ENDED.
ENDED = "ENDED"

NOTICE = "the Deadline Cloud API was not asked ({reasons}): the host's own view decides"
_NOTICE_REASONS = 3


@dataclass(frozen=True)
class ServiceView:
    """What the service says of one worker; ``checked`` is False (with ``reason``) when it could not be asked."""

    checked: bool
    busy: bool | None = None
    status: str | None = None
    active_sessions: list[str] = field(default_factory=list)
    reason: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def not_checked(reason: str) -> ServiceView:
    return ServiceView(checked=False, reason=reason)


@dataclass(frozen=True)
class Connection:
    """A ``deadline`` client for the run, or the reason there is none (the same for every host)."""

    client: Any = None
    reason: str | None = None


def connect(region: str | None = None, session: Any = None) -> Connection:
    """One client for the whole run. ``session`` is a boto3 Session (made from the controller's
    environment when None); ``region`` overrides the session's own."""
    try:
        if session is None:
            import boto3

            session = boto3.session.Session()
        from botocore.exceptions import BotoCoreError
    except ImportError:
        return Connection(reason="boto3 is not installed on the controller")
    try:
        if session.get_credentials() is None:
            return Connection(reason="no AWS credentials on the controller")
        if not (region or session.region_name):
            return Connection(reason="no AWS region: set AWS_DEFAULT_REGION or pass the region")
        return Connection(client=session.client(SERVICE_NAME, region_name=region or session.region_name))
    except BotoCoreError as error:  # a broken profile, credential_process or SSO cache...
        return Connection(reason=f"the AWS session could not be made: {error}")


def unknown_ids(farm_id: str | None, fleet_id: str | None, worker_id: str | None) -> str | None:
    """Why the service cannot be asked about this worker (an id it needs is not known); None when it can."""
    missing = [name for name, value in (("farm_id", farm_id), ("fleet_id", fleet_id), ("worker_id", worker_id)) if not value]
    return f"{', '.join(missing)} not known (worker.toml [worker], worker.json)" if missing else None


def ask(connection: Connection, farm_id: str | None, fleet_id: str | None, worker_id: str | None) -> ServiceView:
    """The service's view of one worker, through ``connection`` (see connect)."""
    if connection.client is None:
        return not_checked(connection.reason or "no Deadline Cloud client")
    unknown = unknown_ids(farm_id, fleet_id, worker_id)
    if unknown:
        return not_checked(unknown)
    ids = {"farmId": farm_id, "fleetId": fleet_id, "workerId": worker_id}
    malformed = _malformed_ids(connection.client, ids)
    if malformed:
        return not_checked(f"not a Deadline Cloud id: {malformed}")
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    operation = "GetWorker"
    try:
        status = connection.client.get_worker(**ids).get("status")
        operation = "ListSessionsForWorker"
        active = [
            session["sessionId"]
            for page in connection.client.get_paginator("list_sessions_for_worker").paginate(**ids)
            for session in page.get("sessions") or []
            if session.get("lifecycleStatus") != ENDED
        ]
    except NoCredentialsError:
        return not_checked("no AWS credentials on the controller")
    except ClientError as error:
        details = error.response.get("Error") or {}
        code = details.get("Code") or "an unnamed error"
        message = details.get("Message")
        return not_checked(f"{operation} answered {code}" + (f": {message}" if message else ""))
    except BotoCoreError as error:  # no network, bad ids (ParamValidationError), a timeout...
        return not_checked(f"{operation} failed: {error}")
    return ServiceView(checked=True, busy=status in BUSY_STATUSES or bool(active), status=status, active_sessions=active)


def _malformed_ids(client: Any, ids: dict[str, str]) -> str:
    """``farmId 'REPLACE-WITH-WORKER-FARM-ID'`` for each id that GetWorker's own parameter pattern
    refuses (an installer's placeholder left in worker.toml), so that no call is made for it."""
    members = client.meta.service_model.operation_model("GetWorker").input_shape.members
    wrong = []
    for name, value in ids.items():
        pattern = members[name].metadata.get("pattern")
        if pattern and not re.fullmatch(pattern, value):
            wrong.append(f"{name} {value!r}")
    return ", ".join(wrong)


def service_view(
    farm_id: str | None, fleet_id: str | None, worker_id: str | None, region: str | None = None, session: Any = None
) -> ServiceView:
    """``ask(connect(region, session), ...)``, for a single worker."""
    return ask(connect(region, session), farm_id, fleet_id, worker_id)


@dataclass(frozen=True)
class BusyVerdict:
    """Whether a worker runs work now, from the host's view and the service's.

    ``busy`` is None only when neither could tell: the caller must not take that for idle.
    """

    busy: bool | None
    decided_by: str  # "host", "service", "host and service", "nobody"
    host_busy: bool | None
    host_sessions: int
    service: ServiceView
    disagreement: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def merge(host: Mapping | None, service: ServiceView) -> BusyVerdict:
    """The host's view (read_agent_info's ``sessions``: ``busy``, ``count``; None when the host
    could not be read) merged with the service's."""
    host_busy = None if host is None else bool(host.get("busy"))
    host_sessions = 0 if host is None else int(host.get("count") or 0)
    if not service.checked or service.busy is None:
        return BusyVerdict(host_busy, "nobody" if host is None else "host", host_busy, host_sessions, service)
    if host_busy is None:
        return BusyVerdict(service.busy, "service", None, 0, service)
    disagreement = None
    if host_busy != service.busy:
        said = f"status {service.status}, {len(service.active_sessions)} session(s) not ended"
        disagreement = (
            f"the host runs {host_sessions or 'some'} session(s) but the service says idle ({said}): busy"
            if host_busy
            else f"the host runs no session but the service says busy ({said}): busy"
        )
    return BusyVerdict(host_busy or service.busy, "host and service", host_busy, host_sessions, service, disagreement)


def not_asked_notice(views: Iterable[ServiceView]) -> str | None:
    """One notice for the run: why the API was not asked (each reason once, with its host count),
    or None when it was asked for every host."""
    reasons = Counter(view.reason or "no reason given" for view in views if not view.checked)
    if not reasons:
        return None
    parts = [reason if count == 1 else f"{reason}, {count} hosts" for reason, count in reasons.most_common(_NOTICE_REASONS)]
    if len(reasons) > _NOTICE_REASONS:
        parts.append(f"and {len(reasons) - _NOTICE_REASONS} other reason(s)")
    return NOTICE.format(reasons="; ".join(parts))
