# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Stops, starts or restarts the agent's service and waits on the host, inside this one call.
# A configuration error stops the agent before it logs and the Service Control Manager restarts
# it with a backoff, so "started" proves nothing: healthy means still running after $Settle
# seconds with the same process id.
param(
    [Parameter(Mandatory)][string]$Name,
    [Parameter(Mandatory)][ValidateSet('restarted', 'started', 'stopped')][string]$State,
    [Parameter(Mandatory)][int]$Timeout,
    [Parameter(Mandatory)][int]$Settle
)
$ErrorActionPreference = 'Stop'
$Ansible.Changed = $false

#cmf:include AgentService

Add-Type -AssemblyName System.ServiceProcess
$logPath = [IO.Path]::Combine($env:ProgramData, 'Amazon', 'Deadline', 'Logs', 'worker-agent.log')

function Get-LogTail {
    if (-not [IO.File]::Exists($logPath)) { return [string[]]@() }
    # The agent writes UTF-8; read it shared, as it keeps the file open.
    $stream = [IO.FileStream]::new($logPath, [IO.FileMode]::Open, [IO.FileAccess]::Read, [IO.FileShare]::ReadWrite)
    try {
        $reader = [IO.StreamReader]::new($stream, [Text.UTF8Encoding]::new($false))
        $lines = $reader.ReadToEnd() -split "`r?`n"
    }
    finally {
        $stream.Dispose()
    }
    $lines = @($lines | Where-Object { $_ -ne '' })
    return [string[]]($lines | Select-Object -Last 20)
}

function Wait-Status([System.ServiceProcess.ServiceController]$Controller, [string]$Status) {
    try {
        $Controller.WaitForStatus($Status, [TimeSpan]::FromSeconds($Timeout))
        return $true
    }
    catch [System.ServiceProcess.TimeoutException] {
        return $false
    }
}

$info = Get-AgentServiceInfo -Name $Name
if (-not $info.exists) {
    $Ansible.Result = @{ error_code = 'SERVICE_NOT_FOUND'; error = "the service $Name does not exist on $env:COMPUTERNAME" }
    return
}
$controller = [System.ServiceProcess.ServiceController]::new($info.name)
$wasRunning = $controller.Status -eq 'Running'
$restarted = $false
$started = $false

if ($State -eq 'stopped' -or $State -eq 'restarted') {
    if ($controller.Status -ne 'Stopped') {
        if ($controller.Status -ne 'StopPending') { $controller.Stop() }
        $Ansible.Changed = $true
        if (-not (Wait-Status $controller 'Stopped')) {
            $Ansible.Result = @{ error_code = 'SERVICE_TIMEOUT'; error = "$Name did not stop within $Timeout seconds" }
            return
        }
    }
}
if ($State -eq 'restarted' -or ($State -eq 'started' -and -not $wasRunning)) {
    $controller.Refresh()
    if ($controller.Status -ne 'Running' -and $controller.Status -ne 'StartPending') { $controller.Start() }
    $Ansible.Changed = $true
    $started = $true
    $restarted = $State -eq 'restarted'
    [void](Wait-Status $controller 'Running')
}

$pidBefore = (Get-AgentServiceInfo -Name $Name).pid
$healthy = $false
if ($State -eq 'stopped') {
    $controller.Refresh()
    $healthy = $controller.Status -eq 'Stopped'
}
elseif ($null -ne $pidBefore) {
    if ($started) { Start-Sleep -Seconds $Settle }
    $after = Get-AgentServiceInfo -Name $Name
    $healthy = ($after.state -eq 'running') -and ($after.pid -eq $pidBefore)
}
$final = Get-AgentServiceInfo -Name $Name
$errorText = $null
if (-not $healthy -and $State -ne 'stopped') {
    $errorText = "the service's last exit code is $($final.exit_code) (state $($final.state))"
}
$Ansible.Result = @{
    changed = [bool]$Ansible.Changed
    state = $(if ($final.state -eq 'running') { 'running' } else { 'stopped' })
    restarted = $restarted
    healthy = $healthy
    pid = $final.pid
    previous_pid = $pidBefore
    error = $errorText
    log_tail = Get-LogTail
}
