# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Reads one account: its SID and name, its local groups (nested membership included), its token
# groups (domain groups too), its direct rights, its groups' rights, the members of its local groups
# (enabled or not), the user rights a domain GPO defines here, and the connecting account's SID.
# Read-only, so it also runs in check mode. Result (Get-AccountReport in lib/Accounts.ps1):
#   hostname, sid, name (DOMAIN\name), domain, type (user|group|well_known), enabled,
#   groups [{name, sid, indirect}] (its local groups), rights [..],
#   token_groups [{sid, name, scope (local|domain|well_known)}] (every group its service logon carries),
#   token_groups_known (false: its domain groups could not be read), token_groups_error {code
#   (DOMAIN_UNREACHABLE|TOKEN_GROUPS_FAILED), message} or null, group_rights {group sid: [..]} (its
#   token groups), local_groups [{name, sid}] (every local group), group_members {group sid: [{sid,
#   name, type, enabled, orphaned (, unreadable)}]} (its local groups), group_policy {known,
#   domain_member, rights {right: [{sid, name}]}, error}, connection_sid
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
