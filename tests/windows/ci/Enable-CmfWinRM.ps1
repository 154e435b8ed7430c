# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# CI only, on a disposable Windows runner (.github/workflows/windows.yml, the Ansible leg): lets an
# Ansible controller on this same machine (in WSL 1, which shares the host's network) reach it over
# WinRM, as a fleet's controller reaches a worker. Makes a local administrator for Ansible with a
# random password (not the runner's own account, and not the agent's: the role refuses to remove
# the account it is connected as), enables WinRM on HTTP with its defaults (no Basic, no
# unencrypted traffic: pywinrm's NTLM encrypts the messages), and writes two inventories into
# $OutFolder: inventory.winrm (INI, for ansible-test windows-integration) and inventory.yml (the
# group deadline_workers, for the collection's playbooks). They hold the password: keep $OutFolder
# out of any artifact.
#Requires -Version 5.1
param(
    [Parameter(Mandatory)][string]$OutFolder,
    [string]$UserName = 'cmf-ansible',
    [string]$HostAlias = 'windows-runner'
)
$ErrorActionPreference = 'Stop'

$bytes = New-Object byte[] 24
$random = New-Object Security.Cryptography.RNGCryptoServiceProvider
try { $random.GetBytes($bytes) } finally { $random.Dispose() }
# Complexity rules want upper, lower, digit and symbol; no quote or # that INI or YAML would read otherwise.
$password = 'Cmf-9x' + [Convert]::ToBase64String($bytes).Replace('/', 'a').Replace('+', 'b').Replace('=', 'c')
if ($env:GITHUB_ACTIONS) { Write-Output "::add-mask::$password" }

$computer = [ADSI]"WinNT://$env:COMPUTERNAME,computer"
$user = $computer.Create('user', $UserName)
$user.SetPassword($password)
$user.Put('Description', 'deadline_cloud.cmf CI: the account Ansible connects as')
$user.SetInfo()
$administrators = (New-Object Security.Principal.SecurityIdentifier 'S-1-5-32-544').Translate([Security.Principal.NTAccount]).Value.Split('\')[1]
([ADSI]"WinNT://$env:COMPUTERNAME/$administrators,group").Add("WinNT://$env:COMPUTERNAME/$UserName,user")

# A local administrator's network logon keeps its administrator token only with this (UAC remote restrictions).
$policy = 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System'
New-ItemProperty -Path $policy -Name LocalAccountTokenFilterPolicy -Value 1 -PropertyType DWord -Force | Out-Null
Enable-PSRemoting -Force -SkipNetworkProfileCheck | Out-Null
Set-Service -Name WinRM -StartupType Automatic
Start-Service -Name WinRM
$listeners = @(Get-ChildItem -Path WSMan:\localhost\Listener | ForEach-Object { (Get-ChildItem -Path $_.PSPath | Where-Object Name -eq 'Transport').Value })
if ($listeners -notcontains 'HTTP') { throw "WinRM has no HTTP listener after Enable-PSRemoting (listeners: $($listeners -join ', '))" }

New-Item -ItemType Directory -Path $OutFolder -Force | Out-Null
$connection = @{
    ansible_host = '127.0.0.1'
    ansible_port = 5985
    ansible_connection = 'winrm'
    ansible_winrm_transport = 'ntlm'
    ansible_winrm_message_encryption = 'always'
    ansible_user = "$env:COMPUTERNAME\$UserName"
    ansible_password = $password
}
# INI values in single quotes: Ansible splits an INI host line as a POSIX shell would, where a bare
# backslash escapes the next character (HOST\user became HOSTuser); no value holds a single quote.
$ini = @('[windows]', ("$HostAlias " + (($connection.Keys | Sort-Object | ForEach-Object { "$_='$($connection[$_])'" }) -join ' ')), '',
    '[windows:vars]', '# The agent service of this runner is a stand-in: it may be restarted.', 'worker_agent_service_allow_restart=true', '',
    '[testhost:children]', 'windows')
$utf8 = New-Object Text.UTF8Encoding -ArgumentList $false
[IO.File]::WriteAllText((Join-Path $OutFolder 'inventory.winrm'), (($ini -join "`n") + "`n"), $utf8)
$yaml = @('all:', '  children:', '    deadline_workers:', '      hosts:', "        $($HostAlias):") +
@($connection.Keys | Sort-Object | ForEach-Object { "          $($_): '$($connection[$_])'" })
[IO.File]::WriteAllText((Join-Path $OutFolder 'inventory.yml'), (($yaml -join "`n") + "`n"), $utf8)
Write-Output "WinRM is on for $env:COMPUTERNAME\$UserName; inventories in $OutFolder"
