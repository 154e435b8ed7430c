# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: simulated_worker
short_description: A Windows Deadline Cloud worker simulated in a state file
description:
  - Stands in for a Windows customer-managed-fleet worker of AWS Deadline Cloud, so that the
    modules, the role and the playbooks of C(deadline_cloud.cmf) run end to end without Windows.
  - Each remote operation of a C(deadline_cloud.cmf) module reads the host's state file, applies
    the operation as Windows would, and writes the file back atomically under a file lock.
  - The state file counts remote calls (C(calls), C(calls_total)) and can inject faults
    (C(faults.latency_ms), C(faults.fail_next), C(faults.modify_between_read_and_write)).
  - Render sessions under C(services.<name>.sessions) (each C({id}), optionally C(ends_after_s) or
    C(ends_at)) end by themselves; ended ones are dropped at every remote call before the operation
    runs. A stop or restart while sessions remain interrupts them and appends their ids to
    C(services.<name>.interrupted_sessions).
  - An account in C(accounts) may carry C(environment), its own user variables, reported as the
    service's C(user_environment) when it is the logon account (null when the key is absent).
  - Only the operations of this collection exist on it; generic modules (for example
    M(ansible.windows.win_ping) or fact gathering) fail with a message that says so.
  - The state file's format is described in C(docs/simulated_worker.md) of the collection.
requirements:
  - ruamel.yaml >= 0.18 on the controller, with which the simulated worker reads and writes its state files (the simulated
    worker alone needs it).
  - tomli >= 2.0.1 on a controller with Python 3.10, to read worker.toml as the agent does (Python 3.11 and later have C(tomllib)).
author:
  - Contributors to deadline_cloud.cmf (!UNKNOWN)
version_added: 0.1.0
options:
  simulated_worker_state:
    description:
      - Path of the host's state file, YAML or JSON, in the format of the collection's STATE contract.
      - Each host needs its own file.
    type: path
    required: true
    vars:
      - name: simulated_worker_state
"""

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.plugins.connection import ConnectionBase

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.state import (
    ConnectionDropped,
    StateFileError,
    run_operation,
)


class Connection(ConnectionBase):
    """Runs the collection's remote operations against a state file."""

    transport = "deadline_cloud.cmf.simulated_worker"
    has_pipelining = False
    is_simulated_worker = True  # the host seam picks the simulated implementation on this

    def _connect(self) -> Connection:
        self._connected = True
        return self

    def run_operation(self, operation: str, parameters: dict) -> dict:
        state_path = self.get_option("simulated_worker_state")
        try:
            return run_operation(state_path, operation, parameters)
        except StateFileError as error:
            raise AnsibleError(str(error)) from None
        except ConnectionDropped as error:
            raise AnsibleConnectionFailure(str(error)) from None

    def exec_command(self, cmd: str, in_data: bytes | None = None, sudoable: bool = True):
        raise AnsibleError(
            "the simulated worker runs only the operations of deadline_cloud.cmf modules; "
            "use gather_facts: false and this collection's modules against it"
        )

    def put_file(self, in_path: str, out_path: str) -> None:
        raise AnsibleError("the simulated worker does not take file transfers")

    def fetch_file(self, in_path: str, out_path: str) -> None:
        raise AnsibleError("the simulated worker does not take file transfers")

    def close(self) -> None:
        self._connected = False
