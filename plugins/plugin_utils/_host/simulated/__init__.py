# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The simulated worker (docs/simulated_worker.md): the state file and its calls (state), and each
operation as its PowerShell script does it (accounts, agent, files, sandbox).

Internal to this collection: not a public API; it may change in any release.
"""
