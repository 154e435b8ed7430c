# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Grants (present) or revokes (absent) user rights held directly by one account, through the LSA on
# its SID, in one call: only the difference is applied. $Rights are canonical constants, checked on
# the controller. Result: added, removed, before (direct rights before), report (read_account's, after:
# its group_policy says which rights a domain GPO defines, so which grants the next policy refresh
# rewrites; win_user_rights warns from it). Refusals: UNKNOWN_RIGHT (a name this Windows does not know,
# refused before any change; STATUS_NO_SUCH_PRIVILEGE 0xC0000060 from the LSA maps to it too),
# LSA_ERROR ("<function> failed: 0x<NTSTATUS> (<system text>)"), DOMAIN_CONTROLLER,
# CONSTRAINED_LANGUAGE, the account's lookup errors; changed says whether rights had changed (a
# refusal of the reading after the change).
param(
    [Parameter(Mandatory)][string]$Account,
    [Parameter(Mandatory)][AllowEmptyCollection()][string[]]$Rights,
    [Parameter(Mandatory)][ValidateSet('present', 'absent')][string]$State
)
$ErrorActionPreference = 'Stop'
$Ansible.Changed = $false
#cmf:include Accounts

# Before anything else: ConstrainedLanguage blocks what follows with errors that do not say why.
if (Test-CmfLanguageRefused) { return }

try {
    Assert-CmfNotDomainController
    $resolved = Resolve-CmfAccount -Account $Account
    Initialize-CmfNative  # compiled only once the account resolves: the LSA is called next
    $unknown = @($Rights | Where-Object { -not [DeadlineCloudCmf.Lsa]::IsKnownRight($_) })
    if ($unknown.Count -gt 0) {
        throw (New-CmfRefusal 'UNKNOWN_RIGHT' ("account $($resolved.name): $($unknown -join ', ') is no privilege or logon right " +
                "on $env:COMPUTERNAME; nothing was changed"))
    }
    $before = @(Get-CmfRights -Sid $resolved.sid)
    # -contains compares case-insensitively, as the LSA does
    $added = @(if ($State -eq 'present') { $Rights | Where-Object { $before -notcontains $_ } })
    $removed = @(if ($State -eq 'absent') { $Rights | Where-Object { $before -contains $_ } })
    [DeadlineCloudCmf.Lsa]::AddRights($resolved.sid, [string[]]$added)
    [DeadlineCloudCmf.Lsa]::RemoveRights($resolved.sid, [string[]]$removed)
    $Ansible.Changed = ($added.Count + $removed.Count) -gt 0
    $Ansible.Result = @{
        added = @($added)
        removed = @($removed)
        before = @($before)
        report = Get-AccountReport -Account $resolved.sid
    }
}
catch {
    $refusal = Get-CmfRefusal $_
    if (-not $refusal) { throw }
    $refusal.changed = [bool]$Ansible.Changed  # true when the reading after the change failed
    $Ansible.Result = $refusal
}
