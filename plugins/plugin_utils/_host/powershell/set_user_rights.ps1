# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Grants (present) or revokes (absent) user rights held directly by one account, through the LSA on
# its SID, in one call: only the difference is applied. $Rights are canonical constants, checked on
# the controller. Result: added, removed, before (direct rights before), report (read_account's, after),
# gpo_rights (those of added/removed that a domain GPO defines: the next policy refresh rewrites them;
# [] when none or when the policy result cannot be read). Refusals: UNKNOWN_RIGHT (a name this Windows
# does not know, refused before any change; STATUS_NO_SUCH_PRIVILEGE 0xC0000060 from the LSA maps to it
# too), LSA_ERROR ("<function> failed: 0x<NTSTATUS> (<system text>)"), DOMAIN_CONTROLLER,
# CONSTRAINED_LANGUAGE, the account's lookup errors.
param(
    [Parameter(Mandatory)][string]$Account,
    [Parameter(Mandatory)][AllowEmptyCollection()][string[]]$Rights,
    [Parameter(Mandatory)][ValidateSet('present', 'absent')][string]$State
)
$ErrorActionPreference = 'Stop'
$Ansible.Changed = $false
#cmf:include Accounts

function Get-GpoDefinedRights {
    # The rights a domain GPO sets on this computer (the policy result of its last refresh); the
    # namespace exists only on a domain member that has applied policy, and reading it may be refused.
    try {
        $entries = @(Get-CimInstance -Namespace 'root\rsop\computer' -ClassName RSOP_UserPrivilegeRight -Filter 'precedence=1')
        return @($entries | ForEach-Object { [string]$_.UserRight })
    }
    catch {
        return @()
    }
}

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
    $gpoRights = @()
    if ($Ansible.Changed) {
        $defined = @(Get-GpoDefinedRights)
        $gpoRights = @(@($added) + @($removed) | Where-Object { $defined -contains $_ })
    }
    $Ansible.Result = @{
        added = @($added)
        removed = @($removed)
        before = @($before)
        report = Get-AccountReport -Account $resolved.sid
        gpo_rights = @($gpoRights)
    }
}
catch {
    $refusal = Get-CmfRefusal $_
    if (-not $refusal) { throw }
    $Ansible.Result = $refusal
}
