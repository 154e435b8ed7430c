# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Reads one account: its SID and name, its local groups (nested membership included), its direct
# rights, its groups' rights and members (enabled or not) and the connecting account's SID.
# Read-only, so it also runs in check mode. Result (Get-AccountReport in lib/Accounts.ps1):
#   hostname, sid, name (DOMAIN\name), domain, type (user|group|well_known), enabled,
#   groups [{name, sid, indirect}], rights [..], group_rights {group sid: [..]} (the account's groups),
#   local_groups [{name, sid}] (every local group), group_members {group sid: [{sid, name, type,
#   enabled, orphaned (, unreadable)}]} (the account's groups), connection_sid
# Refusals: ACCOUNT_NOT_FOUND, DOMAIN_UNREACHABLE, ACCOUNT_LOOKUP_FAILED, DOMAIN_CONTROLLER,
# CONSTRAINED_LANGUAGE, LSA_ERROR.
[CmdletBinding(SupportsShouldProcess)]
param(
    [Parameter(Mandatory)][string]$Account
)
$ErrorActionPreference = 'Stop'
$Ansible.Changed = $false
#cmf:include Accounts

# Before anything else: ConstrainedLanguage blocks what follows with errors that do not say why.
if (Test-CmfLanguageRefused) { return }

try {
    $Ansible.Result = Get-AccountReport -Account $Account
}
catch {
    $refusal = Get-CmfRefusal $_
    if (-not $refusal) { throw }
    $Ansible.Result = $refusal
}
