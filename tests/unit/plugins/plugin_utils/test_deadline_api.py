# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Busy as the Deadline Cloud API shows it: botocore's Stubber answers, never the network."""

from __future__ import annotations

import datetime
import sys

import pytest

boto3 = pytest.importorskip("boto3")
from botocore.stub import Stubber  # noqa: E402

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent import deadline_api  # noqa: E402

FARM = "farm-0123456789abcdef0123456789abcdef"
FLEET = "fleet-0123456789abcdef0123456789abcdef"
WORKER = "worker-0123456789abcdef0123456789abcdef"
IDS = {"farmId": FARM, "fleetId": FLEET, "workerId": WORKER}
QUEUE = "queue-00112233445566778899aabbccddeeff"
JOB = "job-00112233445566778899aabbccddeeff"
STARTED_AT = datetime.datetime(2026, 11, 28, 11, 0, tzinfo=datetime.timezone.utc)


def session_id(n: int) -> str:
    return f"session-{n:032x}"


def worker(status: str) -> dict:
    return {**IDS, "status": status, "createdAt": STARTED_AT, "createdBy": "arn:aws:sts::111122223333:assumed-role/Admin/x"}


def session(n: int, lifecycle: str) -> dict:
    entry = {"sessionId": session_id(n), "queueId": QUEUE, "jobId": JOB, "startedAt": STARTED_AT, "lifecycleStatus": lifecycle}
    if lifecycle == "ENDED":
        entry["endedAt"] = STARTED_AT + datetime.timedelta(minutes=5)
    return entry


@pytest.fixture(autouse=True)
def no_aws_environment(monkeypatch, tmp_path):
    """Nothing of this machine's AWS setup reaches a test."""
    import os

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-profile probe


class StubbedSession(boto3.session.Session):
    """A real Session with credentials and a region whose deadline client is stubbed."""

    def __init__(self) -> None:
        super().__init__(aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="secret", region_name="us-west-2")
        self.stubbed = super().client("deadline")
        self.stubber = Stubber(self.stubbed)
        self.stubber.activate()

    def client(self, *args, **kwargs):
        return self.stubbed


@pytest.fixture
def stubbed():
    made = StubbedSession()
    yield made
    made.stubber.deactivate()


def test_idle_worker(stubbed):
    stubbed.stubber.add_response("get_worker", worker("IDLE"), IDS)
    stubbed.stubber.add_response("list_sessions_for_worker", {"sessions": [session(1, "ENDED")]}, IDS)

    view = deadline_api.service_view(FARM, FLEET, WORKER, session=stubbed)

    stubbed.stubber.assert_no_pending_responses()
    assert view == deadline_api.ServiceView(checked=True, busy=False, status="IDLE", active_sessions=[])


def test_busy_by_status(stubbed):
    stubbed.stubber.add_response("get_worker", worker("RUNNING"), IDS)
    stubbed.stubber.add_response("list_sessions_for_worker", {"sessions": []}, IDS)

    view = deadline_api.service_view(FARM, FLEET, WORKER, session=stubbed)

    assert view.checked and view.busy is True
    assert view.status == "RUNNING"
    assert view.active_sessions == []


def test_busy_by_a_session_not_ended_on_the_second_page(stubbed):
    # IDLE while a session is still ending: the sessions decide, and the paginator reads on.
    stubbed.stubber.add_response("get_worker", worker("IDLE"), IDS)
    stubbed.stubber.add_response("list_sessions_for_worker", {"sessions": [session(1, "ENDED")], "nextToken": "page-2"}, IDS)
    stubbed.stubber.add_response(
        "list_sessions_for_worker",
        {"sessions": [session(2, "ENDED"), session(3, "UPDATE_IN_PROGRESS")]},
        {**IDS, "nextToken": "page-2"},
    )

    view = deadline_api.service_view(FARM, FLEET, WORKER, session=stubbed)

    stubbed.stubber.assert_no_pending_responses()
    assert view.checked and view.busy is True
    assert view.active_sessions == [session_id(3)]


def test_access_denied_is_a_reason_not_an_exception(stubbed):
    stubbed.stubber.add_client_error(
        "get_worker",
        service_error_code="AccessDeniedException",
        service_message="User is not authorized to perform: deadline:GetWorker",
        http_status_code=403,
        expected_params=IDS,
    )

    view = deadline_api.service_view(FARM, FLEET, WORKER, session=stubbed)

    assert view.checked is False and view.busy is None
    assert view.reason == "GetWorker answered AccessDeniedException: User is not authorized to perform: deadline:GetWorker"


def test_access_denied_on_the_sessions_names_that_call(stubbed):
    stubbed.stubber.add_response("get_worker", worker("IDLE"), IDS)
    stubbed.stubber.add_client_error("list_sessions_for_worker", service_error_code="AccessDeniedException", http_status_code=403)

    view = deadline_api.service_view(FARM, FLEET, WORKER, session=stubbed)

    assert not view.checked
    assert view.reason.startswith("ListSessionsForWorker answered AccessDeniedException")


def test_no_credentials():
    view = deadline_api.service_view(FARM, FLEET, WORKER, region="us-west-2", session=boto3.session.Session())

    assert view == deadline_api.ServiceView(checked=False, reason="no AWS credentials on the controller")


def test_no_region():
    session = boto3.session.Session(aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="secret")

    view = deadline_api.service_view(FARM, FLEET, WORKER, session=session)

    assert not view.checked
    assert view.reason.startswith("no AWS region")


def test_boto3_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "boto3", None)  # `import boto3` now raises ImportError

    view = deadline_api.service_view(FARM, FLEET, WORKER, region="us-west-2")

    assert view == deadline_api.ServiceView(checked=False, reason="boto3 is not installed on the controller")


def test_missing_worker_id_is_not_asked(stubbed):
    view = deadline_api.service_view(FARM, FLEET, None, session=stubbed)

    stubbed.stubber.assert_no_pending_responses()
    assert not view.checked
    assert view.reason.startswith("worker_id not known")


def test_placeholder_id_is_not_asked(stubbed):
    # the installer's worker.toml template, its farm_id left as shipped
    view = deadline_api.service_view("REPLACE-WITH-WORKER-FARM-ID", FLEET, WORKER, session=stubbed)

    stubbed.stubber.assert_no_pending_responses()
    assert view == deadline_api.ServiceView(checked=False, reason="not a Deadline Cloud id: farmId 'REPLACE-WITH-WORKER-FARM-ID'")


HOST_IDLE = {"busy": False, "count": 0, "ids": []}
HOST_BUSY = {"busy": True, "count": 2, "ids": ["session-a", "session-b"]}
SERVICE_IDLE = deadline_api.ServiceView(checked=True, busy=False, status="IDLE")
SERVICE_BUSY = deadline_api.ServiceView(checked=True, busy=True, status="RUNNING", active_sessions=[session_id(1)])
NOT_ASKED = deadline_api.not_checked("no AWS credentials on the controller")


@pytest.mark.parametrize(
    ("host", "service", "busy", "decided_by", "disagrees"),
    [
        (HOST_IDLE, NOT_ASKED, False, "host", False),
        (HOST_BUSY, NOT_ASKED, True, "host", False),
        (HOST_IDLE, SERVICE_IDLE, False, "host and service", False),
        (HOST_BUSY, SERVICE_BUSY, True, "host and service", False),
        (HOST_IDLE, SERVICE_BUSY, True, "host and service", True),
        (HOST_BUSY, SERVICE_IDLE, True, "host and service", True),
        (None, SERVICE_BUSY, True, "service", False),
        (None, SERVICE_IDLE, False, "service", False),
        (None, NOT_ASKED, None, "nobody", False),
    ],
)
def test_merge_busy_wins(host, service, busy, decided_by, disagrees):
    verdict = deadline_api.merge(host, service)

    assert verdict.busy is busy
    assert verdict.decided_by == decided_by
    assert (verdict.disagreement is not None) is disagrees


def test_merge_says_what_each_side_saw():
    verdict = deadline_api.merge(HOST_BUSY, SERVICE_IDLE)

    assert verdict.host_sessions == 2
    assert verdict.disagreement == "the host runs 2 session(s) but the service says idle (status IDLE, 0 session(s) not ended): busy"
    assert verdict.as_dict()["service"]["status"] == "IDLE"


def test_notice_once_per_run():
    assert deadline_api.not_asked_notice([SERVICE_IDLE, SERVICE_BUSY]) is None
    notice = deadline_api.not_asked_notice([NOT_ASKED, SERVICE_IDLE, NOT_ASKED, deadline_api.not_checked("worker_id not known")])
    assert notice == (
        "the Deadline Cloud API was not asked (no AWS credentials on the controller, 2 hosts; worker_id not known):"
        " the host's own view decides"
    )


def test_the_ids_and_region_come_from_the_hosts_reading():
    import simworker

    from ansible_collections.deadline_cloud.cmf.plugins.action.worker_agent_service import _service_ids
    from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.agent import read_agent_info
    from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.state import SimulatedState

    state = simworker.example_state()
    state["files"][r"C:\ProgramData\Amazon\Deadline\Cache\worker.json"] = {"text": '{"worker_id": "worker-0123456789abcdef0123456789abcdef"}'}
    raw = read_agent_info(SimulatedState(state), {"service": "DeadlineWorker", "config_path": simworker.WORKER_TOML, "account": ""})
    ids = _service_ids({"reading": raw})
    assert ids["farm_id"] == "farm-0123456789abcdef0123456789abcdef"
    assert ids["fleet_id"] == "fleet-0123456789abcdef0123456789abcdef"
    assert ids["region"] == "us-west-2"  # the service's AWS_DEFAULT_REGION
    assert ids["worker_id"] == "worker-0123456789abcdef0123456789abcdef"
    assert _service_ids(None) == {}
