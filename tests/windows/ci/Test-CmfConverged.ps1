# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# CI only (.github/workflows/windows.yml, the Ansible leg): after playbooks/converge.yml, checks this
# Windows host with its own interfaces, not the collection's: the agent's account is out of
# Administrators (by SID), holds the rights it needs directly, worker.toml opts in and has no BOM,
# and DeadlineWorker runs.
#Requires -Version 5.1
param([string]$AgentUser = 'deadline-worker')
$ErrorActionPreference = 'Stop'
# The suite's own LSA reader (CmfContractLsa): the rights an account holds directly, by SID.
Import-Module (Join-Path (Split-Path -Parent $PSScriptRoot) 'CmfContract.psm1')
$problems = @()

$sid = (New-Object Security.Principal.NTAccount $env:COMPUTERNAME, $AgentUser).Translate([Security.Principal.SecurityIdentifier]).Value
$administrators = (New-Object Security.Principal.SecurityIdentifier 'S-1-5-32-544').Translate([Security.Principal.NTAccount]).Value.Split('\')[1]
$group = [ADSI]"WinNT://$env:COMPUTERNAME/$administrators,group"
foreach ($member in @($group.psbase.Invoke('Members'))) {
    $bytes = $member.GetType().InvokeMember('objectSid', 'GetProperty', $null, $member, $null)
    if ((New-Object Security.Principal.SecurityIdentifier($bytes, 0)).Value -eq $sid) { $problems += "$AgentUser is still in $administrators" }
}

$config = Join-Path $env:ProgramData 'Amazon\Deadline\Config\worker.toml'
$bytes = [IO.File]::ReadAllBytes($config)
if ($bytes.Length -ge 3 -and $bytes[0] -eq 0xEF -and $bytes[1] -eq 0xBB -and $bytes[2] -eq 0xBF) { $problems += "$config starts with a BOM" }
$text = (New-Object Text.UTF8Encoding -ArgumentList $false).GetString($bytes)
if ($text -notmatch '(?m)^\s*run_jobs_as_agent_user\s*=\s*true\s*$') { $problems += "$config does not set run_jobs_as_agent_user = true" }

# LsaEnumerateAccountRights on the SID: what the account holds directly (secedit's export may name a
# local account by its name rather than *SID, and holds every account's rights).
$held = @([CmfContractLsa]::Get($sid))
$needed = @('SeServiceLogonRight', 'SeAssignPrimaryTokenPrivilege', 'SeIncreaseQuotaPrivilege')
# The installer's --allow-shutdown writes shutdown_on_stop = true: the agent then shuts the host down, and needs the right.
if ($text -match '(?m)^\s*shutdown_on_stop\s*=\s*true\s*$') { $needed += 'SeShutdownPrivilege' }
foreach ($right in $needed) {
    # -notcontains ignores case, as the LSA does
    if ($held -notcontains $right) { $problems += "$AgentUser does not hold $right directly (it holds: $($held -join ', '))" }
}

if ((Get-Service -Name DeadlineWorker).Status -ne 'Running') { $problems += 'DeadlineWorker is not running' }

if ($problems.Count -gt 0) { throw ("the converge did not reach its final state: " + ($problems -join '; ')) }
Write-Output 'the converge reached its final state on this runner'
