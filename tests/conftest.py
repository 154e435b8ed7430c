# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Makes the source tree importable and runnable as the collection deadline_cloud.cmf."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/ helpers: `import simworker`

from simworker import collections_root  # noqa: E402

COLLECTIONS_ROOT = collections_root()
if str(COLLECTIONS_ROOT) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS_ROOT))


def shared_path(*parts: str) -> Path:
    """A file under ../shared, or a skip that says it is absent (a bare clone has no shared/)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs ../shared/{'/'.join(parts)}, which is absent beside this clone")
    return path


@pytest.fixture
def shared():
    return shared_path


@pytest.fixture(scope="session", autouse=True)
def _ansible_environment():
    os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", str(COLLECTIONS_ROOT))
    yield
