# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    """The one account a module acts on, named as Windows accepts it (plugin_utils/_windows/accounts.py)."""

    DOCUMENTATION = r"""
options:
  account:
    description:
      - The account - a local name, V(.\\name) (this computer), V(HOST\\name), V(DOMAIN\\name), a UPN
        V(name@domain), or a SID string such as V(S-1-5-21-...-1001).
      - Names match case-insensitively, as Windows matches them; the module acts on the account's SID.
      - In YAML write V('.\\name') in single quotes, or without quotes; in double quotes V(\\a) is a bell and
        V(\\t) a tab, and the name is not found.
    type: str
    required: true
notes:
  - A missing account, an ambiguous name or an unreachable domain fails the task with a message that
    names the account; nothing is changed.
"""
