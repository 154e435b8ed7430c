# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Everything the agent's decision depends on, in one call: the agent's version (from the Python
# that hosts the service), the service and its own Environment value, the machine's DEADLINE_*
# variables, the account's groups and rights (Get-AccountReport) and worker.toml's exact bytes.
# Read-only, so it also runs in check mode.
[CmdletBinding(SupportsShouldProcess)]
param(
    [Parameter(Mandatory)][string]$Service,
    [Parameter(Mandatory)][string]$ConfigPath,
    [Parameter(Mandatory)][AllowEmptyString()][string]$Account
)
$ErrorActionPreference = 'Stop'
$Ansible.Changed = $false

#cmf:include Accounts
#cmf:include AgentService

function Get-ServicePython([hashtable]$ServiceInfo) {
    # pywin32 runs the service through pythonservice.exe in the Python's exec_prefix (domain notes, section 5).
    $image = [string]$ServiceInfo.image_path
    if (-not $image) { return $null }
    if ($image.StartsWith('"')) { $image = $image.Substring(1, $image.IndexOf('"', 1) - 1) }
    elseif ($image -match '^(.+?\.exe)') { $image = $Matches[1] }
    $folder = [IO.Path]::GetDirectoryName($image)
    foreach ($candidate in @(
            [IO.Path]::Combine($folder, 'python.exe'),
            [IO.Path]::Combine($folder, 'Scripts', 'python.exe'),
            [IO.Path]::Combine([IO.Path]::GetDirectoryName($folder), 'python.exe'))) {
        if ([IO.File]::Exists($candidate)) { return $candidate }
    }
    return $null
}

function Get-AgentVersion([hashtable]$ServiceInfo) {
    $python = Get-ServicePython $ServiceInfo
    $result = @{ version = $null; location = $null; python = $python; error = $null }
    if (-not $python) {
        $result.error = "no python.exe beside the service's executable ($($ServiceInfo.image_path))"
        return $result
    }
    # No double quotes in the code: Windows PowerShell 5.1 mangles them in native arguments.
    $code = 'import json,os,deadline_worker_agent as m;print(json.dumps([m.__version__,os.path.dirname(m.__file__)]))'
    $output = & $python -c $code 2>&1
    if ($LASTEXITCODE -eq 0) {
        $parsed = ($output | Select-Object -Last 1) | ConvertFrom-Json
        $result.version = [string]$parsed[0]
        $result.location = [string]$parsed[1]
    }
    else {
        $result.error = (($output | ForEach-Object { [string]$_ }) -join "`n").Trim()
    }
    return $result
}

function Get-MachineAgentVariables {
    $variables = @{}
    $key = [Microsoft.Win32.Registry]::LocalMachine.OpenSubKey('SYSTEM\CurrentControlSet\Control\Session Manager\Environment')
    try {
        foreach ($name in $key.GetValueNames()) {
            if ($name -like 'DEADLINE_*') { $variables[$name] = [string]$key.GetValue($name) }
        }
    }
    finally {
        $key.Dispose()
    }
    return $variables
}

$serviceInfo = Get-AgentServiceInfo -Name $Service
$agent = @{ version = $null; location = $null; python = $null; error = "the service $Service does not exist" }
if ($serviceInfo.exists) { $agent = Get-AgentVersion $serviceInfo }

$accountName = $Account
if (-not $accountName -and $serviceInfo.exists) { $accountName = [string]$serviceInfo.account }
$accountReport = $null
$accountError = $null
if ($accountName) {
    try {
        $accountReport = Get-AccountReport -Account $accountName
    }
    catch {
        # An account that does not resolve must not hide the rest of the reading.
        $inner = Get-CmfInnerException $_.Exception
        if ($inner -is [DeadlineCloudCmf.OperationRefused]) {
            $accountError = @{ code = $inner.Code; message = $inner.Message }
        }
        else {
            $accountError = @{ code = 'HOST_ERROR'; message = "$accountName`: $($inner.Message)" }
        }
    }
}

$config = @{ path = $ConfigPath; exists = $false; content = ''; modified_at = $null }
if ([IO.File]::Exists($ConfigPath)) {
    $config.exists = $true
    $config.content = [Convert]::ToBase64String([IO.File]::ReadAllBytes($ConfigPath))
    $config.modified_at = [IO.File]::GetLastWriteTimeUtc($ConfigPath).ToString('o')
}

$Ansible.Result = @{
    agent = $agent
    service = $serviceInfo
    machine_environment = Get-MachineAgentVariables
    account = $accountReport
    account_error = $accountError
    config = $config
}
