# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Everything the agent's decision depends on, in one call (Get-CmfAgentReading in lib/AgentReading.ps1).
# Read-only, so it also runs in check mode. Result:
#   agent {version, location, python, error}: read with the service's own python (-I, importlib
#     metadata and find_spec; the agent is not imported); any failure is in error with stderr's text
#   service {name, exists, state, start_mode, account, account_sid, environment, pid, started_at,
#     image_path, python_class, exit_code, service_specific_exit_code, token_administrators (whether
#     the running process's token holds Administrators; null when it does not run or its token
#     cannot be read), token_error (why it could not be read, else null)}
#   machine_environment {NAME: value} (DEADLINE_WORKER_*), user_environment {NAME: value} or null
#   account (read_account's report for $Account, or else the service's logon account), account_error {code, message}
#   config {path, exists, content (base64), modified_at (UTC ISO 8601), sha256}
#   sessions {busy, count, ids, processes [{pid, name}], directories, root, worker_id}
# Refusals: CONSTRAINED_LANGUAGE (WDAC or AppLocker enforced), before anything is read.
[CmdletBinding(SupportsShouldProcess)]
param(
    [Parameter(Mandatory)][string]$Service,
    [Parameter(Mandatory)][string]$ConfigPath,
    [Parameter(Mandatory)][AllowEmptyString()][string]$Account
)
$ErrorActionPreference = 'Stop'
$Ansible.Changed = $false

#cmf:include AgentReading

# Before anything else: ConstrainedLanguage blocks what follows with errors that do not say why.
if (Test-CmfLanguageRefused) { return }

$Ansible.Result = Get-CmfAgentReading -Service $Service -ConfigPath $ConfigPath -Account $Account
