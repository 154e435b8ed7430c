# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Adds one account to local groups (present) or removes it from them (absent), by SID, in one call.
# Every group is resolved and every removal checked against the safety rules before anything
# changes. Result: added, removed ([{name, sid}]), before (its groups before), report (after).
param(
    [Parameter(Mandatory)][string]$Account,
    [Parameter(Mandatory)][string[]]$Groups,
    [Parameter(Mandatory)][ValidateSet('present', 'absent')][string]$State
)
$ErrorActionPreference = 'Stop'
$Ansible.Changed = $false
#cmf:include Accounts

try {
    $report = Get-AccountReport -Account $Account
    $localGroups = @(Get-CmfLocalGroups)
    $wanted = [Collections.Generic.List[object]]@()
    $missing = [Collections.Generic.List[string]]@()
    foreach ($name in $Groups) {
        $group = Resolve-CmfLocalGroup -Group $name -LocalGroups $localGroups
        if (-not $group) { $missing.Add($name) }
        elseif (-not ($wanted | Where-Object { $_.sid -eq $group.sid })) { $wanted.Add($group) }
    }
    if ($missing.Count -gt 0) {
        $known = ($localGroups | ForEach-Object { $_.name } | Sort-Object) -join ', '
        throw (New-CmfRefusal 'GROUP_NOT_FOUND' "no local group $($missing -join ', ') on $env:COMPUTERNAME (local groups: $known)")
    }
    $current = @($report.groups | ForEach-Object { $_.sid })
    $toAdd = @(if ($State -eq 'present') { $wanted | Where-Object { $current -notcontains $_.sid } })
    $toRemove = @(if ($State -eq 'absent') { $wanted | Where-Object { $current -contains $_.sid } })
    foreach ($group in $toRemove) {
        $why = Get-CmfRemovalRefusal -Report $report -Group @{ name = $group.name; sid = $group.sid }
        if ($why) { throw (New-CmfRefusal 'REMOVAL_REFUSED' $why) }
    }
    # The member by SID (WinNT://S-1-...), which needs no name lookup and works for domain accounts.
    foreach ($group in $toAdd) { $group.entry.psbase.Invoke('Add', "WinNT://$($report.sid)") | Out-Null }
    foreach ($group in $toRemove) { $group.entry.psbase.Invoke('Remove', "WinNT://$($report.sid)") | Out-Null }
    $changed = ($toAdd.Count + $toRemove.Count) -gt 0
    $Ansible.Changed = $changed
    $Ansible.Result = @{
        added = @($toAdd | ForEach-Object { @{ name = $_.name; sid = $_.sid } })
        removed = @($toRemove | ForEach-Object { @{ name = $_.name; sid = $_.sid } })
        before = @($report.groups)
        report = $(if ($changed) { Get-AccountReport -Account $report.sid } else { $report })
    }
}
catch {
    $refusal = Get-CmfRefusal $_
    if (-not $refusal) { throw }
    $Ansible.Result = $refusal
}
