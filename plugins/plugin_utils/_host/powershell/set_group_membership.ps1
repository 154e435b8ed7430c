# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Adds one account to local groups (present) or removes it from them (absent), by SID, in one call.
# Every group is resolved and every removal checked against the safety rules before anything
# changes. Result: added, removed ([{name, sid}]), before (its groups before, [{name, sid, indirect}]),
# report (read_account's, after). Refusals before any change: GROUP_NOT_FOUND, REMOVAL_REFUSED,
# DOMAIN_CONTROLLER, ACCOUNT_NOT_FOUND, DOMAIN_UNREACHABLE (also: a removal while no domain controller
# answers for its domain groups), TOKEN_GROUPS_FAILED (a removal while its domain groups cannot be read
# for another cause), ACCOUNT_LOOKUP_FAILED, LSA_ERROR, CONSTRAINED_LANGUAGE; and GROUP_CHANGE_FAILED,
# when one group's change fails after others were made: with changed, added and removed saying what
# was done (the rest is not attempted). A refusal after the change (the reading after it) has changed.
param(
    [Parameter(Mandatory)][string]$Account,
    [Parameter(Mandatory)][string[]]$Groups,
    [Parameter(Mandatory)][ValidateSet('present', 'absent')][string]$State
)
$ErrorActionPreference = 'Stop'
$Ansible.Changed = $false
#cmf:include Accounts

# Before anything else: ConstrainedLanguage blocks what follows with errors that do not say why.
if (Test-CmfLanguageRefused) { return }

$AdministratorsSid = 'S-1-5-32-544'

function Get-CmfRemovalRefusal {
    # Why removing the account from a group is refused, @{ code; message }, or $null: the rules of
    # groups.py (plan_membership: nested_refusal, then removal_refusal), which the controller also runs.
    param([hashtable]$Report, [hashtable]$Group)
    $prefix = "refusing to remove $($Report.name) ($($Report.sid)) from $($Group.name) ($($Group.sid)), nothing was changed: "
    if (-not $Report.token_groups_known) {
        # Fail closed: a domain group it is in, nested in this one, would keep it a member.
        return @{ code = [string]$Report.token_groups_error.code; message = $prefix + "its domain groups cannot be read ($($Report.token_groups_error.code): " +
            "$($Report.token_groups_error.message)), so whether it stays a member through one of them cannot be told" }
    }
    # The groups of its token that this group holds: a domain group nested in it, Authenticated Users...
    $own = @($Report.token_groups | Where-Object { $_.sid -ne $Group.sid } | ForEach-Object { $_.sid })
    $through = @($Report.group_members[$Group.sid] | Where-Object { $own -contains $_.sid } | ForEach-Object { $_.name } | Sort-Object)
    $held = @($Report.groups | Where-Object { $_.sid -eq $Group.sid }) | Select-Object -First 1
    if ($held -and $held.indirect) {
        return @{ code = 'REMOVAL_REFUSED'; message = $prefix + "it is a member only through $($through -join ', '); remove it from that group instead" }
    }
    if ($through.Count -gt 0) {
        return @{ code = 'REMOVAL_REFUSED'; message = $prefix + "it is also a member through $($through -join ', '), nested in it, which would keep it one; " +
            "remove it from that group (or that group from $($Group.name)) first" }
    }
    $why = Get-CmfSafetyRefusal -Report $Report -Group $Group -Prefix $prefix
    if ($why) { return @{ code = 'REMOVAL_REFUSED'; message = $why } }
    $null
}

function Get-CmfSafetyRefusal {
    # Why taking the account out of Administrators could lock the host out (groups.py removal_refusal), or $null.
    param([hashtable]$Report, [hashtable]$Group, [string]$Prefix)
    $prefix = $Prefix
    if ($Group.sid -ne $AdministratorsSid) { return $null }
    if ($Report.connection_sid -eq $Report.sid) {
        return $prefix + 'it is the account Ansible is connected as, which would lose administrator rights mid-run'
    }
    if ($Report.sid -match '^S-1-5-21-.*-500$') {
        return $prefix + 'it is the built-in Administrator (RID 500), the account of last resort'
    }
    $others = @($Report.group_members[$Group.sid] | Where-Object { $_.sid -ne $Report.sid -and -not $_.orphaned -and $_.enabled })
    if ($others.Count -eq 0) {
        return $prefix + 'it would leave the group with no enabled member'
    }
    $null
}

try {
    $report = Get-AccountReport -Account $Account
    $localGroups = @(Get-CmfLocalGroups)
    $builtinName = Get-CmfBuiltinDomainName
    $wanted = [Collections.Generic.List[object]]@()
    $missing = [Collections.Generic.List[string]]@()
    foreach ($name in $Groups) {
        $group = Resolve-CmfLocalGroup -Group $name -LocalGroups $localGroups -BuiltinName $builtinName
        if (-not $group) { $missing.Add($name) }
        elseif (-not ($wanted | Where-Object { $_.sid -eq $group.sid })) { $wanted.Add($group) }
    }
    if ($missing.Count -gt 0) {
        $known = ($localGroups | ForEach-Object { $_.name } | Sort-Object) -join ', '
        throw (New-CmfRefusal 'GROUP_NOT_FOUND' "no local group $($missing -join ', ') on $env:COMPUTERNAME (local groups: $known)")
    }
    # Membership through a nested group counts: the token has it, nothing to add.
    $current = @($report.groups | ForEach-Object { $_.sid })
    $toAdd = @(if ($State -eq 'present') { $wanted | Where-Object { $current -notcontains $_.sid } })
    $toRemove = @(if ($State -eq 'absent') { $wanted | Where-Object { $current -contains $_.sid } })
    foreach ($group in $toRemove) {
        $why = Get-CmfRemovalRefusal -Report $report -Group @{ name = $group.name; sid = $group.sid }
        if ($why) { throw (New-CmfRefusal $why.code $why.message) }
    }
    # The member by SID (WinNT://S-1-...), which needs no name lookup and works for domain accounts.
    # Each change is recorded as it is made: one that fails after others leaves the host changed,
    # and the answer says exactly how.
    $added = [Collections.Generic.List[object]]@()
    $removed = [Collections.Generic.List[object]]@()
    $steps = @(@($toAdd | ForEach-Object { @{ verb = 'Add'; group = $_; done = $added } }) + @($toRemove | ForEach-Object { @{ verb = 'Remove'; group = $_; done = $removed } }))
    foreach ($step in $steps) {
        try {
            $step.group.entry.psbase.Invoke($step.verb, "WinNT://$($report.sid)") | Out-Null
        }
        catch {
            $cause = $_.Exception
            while ($null -ne $cause.InnerException) { $cause = $cause.InnerException }
            $done = @(@($added | ForEach-Object { "added to $($_.name)" }) + @($removed | ForEach-Object { "removed from $($_.name)" }))
            $so = $(if ($done.Count -gt 0) { "it was already $($done -join ', ') before that: those changes stay" } else { 'nothing was changed' })
            $Ansible.Changed = $done.Count -gt 0
            $Ansible.Result = @{
                error_code = 'GROUP_CHANGE_FAILED'
                error = ("{0} {1} ({2}) {3} {4} ({5}) failed: {6}; {7}" -f $(if ($step.verb -eq 'Add') { 'adding' } else { 'removing' }),
                    $report.name, $report.sid, $(if ($step.verb -eq 'Add') { 'to' } else { 'from' }), $step.group.name, $step.group.sid,
                    $cause.Message.Trim(), $so)
                changed = [bool]$Ansible.Changed
                added = @($added)
                removed = @($removed)
            }
            return
        }
        $step.done.Add(@{ name = $step.group.name; sid = $step.group.sid })
    }
    $changed = ($added.Count + $removed.Count) -gt 0
    $Ansible.Changed = $changed
    $Ansible.Result = @{
        added = @($added)
        removed = @($removed)
        before = @($report.groups)
        report = $(if ($changed) { Get-AccountReport -Account $report.sid } else { $report })
    }
}
catch {
    $refusal = Get-CmfRefusal $_
    if (-not $refusal) { throw }
    $refusal.changed = [bool]$Ansible.Changed  # true when the reading after the change failed
    $Ansible.Result = $refusal
}
