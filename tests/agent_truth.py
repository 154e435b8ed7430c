# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ground truth: what the real worker agent (deadline-cloud-worker-agent, a test dependency)
makes of a worker.toml and an environment, with its own ConfigFile.load and WorkerSettings."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from unittest import mock


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
