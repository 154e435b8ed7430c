# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the Deadline Cloud worker agent decides, read from its source: how it reads worker.toml
(config_file), the settings it resolves (settings), whether it starts (startup), the findings
(rules), how worker.toml is edited (worker_toml) and the service's view of a worker (deadline_api).

Internal to this collection: not a public API; it may change in any release.
"""
