# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    """A reading of the host that a module may use instead of reading the host again."""

    DOCUMENTATION = r"""
options:
  reading:
    description:
      - A result of M(deadline_cloud.cmf.worker_agent_info) with O(deadline_cloud.cmf.worker_agent_info#module:details=true) for this
        host (or its RV(deadline_cloud.cmf.worker_agent_info#module:reading)). A result without the details holds no reading, and the
        module then reads the host itself.
      - When it is given and covers what the module acts on (the same account, the same file), the module plans from it instead of
        reading the host. Nothing in place costs no remote call, a change costs one. A change is still guarded on the host (a file is
        written only if it still has the bytes of the reading; rights and groups are applied by the host itself).
      - Without it, the module reads the host itself.
    type: dict
"""
