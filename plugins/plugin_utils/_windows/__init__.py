# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Windows security as the agent account meets it: names and SIDs (accounts), user rights
(user_rights) and local groups (groups).

Internal to this collection: not a public API; it may change in any release.
"""
