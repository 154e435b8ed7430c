# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Stops, starts or restarts the agent's service and waits on the host, inside this one call.
# A configuration error stops the agent before it logs and the Service Control Manager restarts
# it with a backoff, so "started" proves nothing: healthy means still running after $Settle
# seconds with the same process id. With $IfIdle, a running service that runs a render session now
# is left alone (busy: true): a stop interrupts the session's task at once (domain notes, stopping).
# Result: changed, state (running|stopped, or start_pending|stop_pending when a wait timed out), restarted,
#   healthy, pid, previous_pid (before acting), error (the system's message of a failed start/stop,
#   a wait that timed out, or why it is unhealthy), win32_error (the native code of a failed
#   start/stop: 1069 logon failure, 1058 disabled, 1061 not accepting controls ...; 1056 "already
#   running" after a start and 1062 "not started" after a stop mean it got there: no error), exit_code,
#   service_specific_exit_code, busy (a session ran when the call began: with $IfIdle and a stop due,
#   nothing was done), sessions (as read before acting), interrupted (how many
#   sessions ran when the service was stopped), log_tail [lines appended to worker-agent.log since
#   this call began acting], events [{id, time, message}] (Service Control Manager events about the
#   service since then), reading (read_agent_info's result after acting; null when $ConfigPath is '').
# Refusals: SERVICE_NOT_FOUND, CONSTRAINED_LANGUAGE.
param(
    [Parameter(Mandatory)][string]$Name,
    [Parameter(Mandatory)][ValidateSet('restarted', 'started', 'stopped')][string]$State,
    [Parameter(Mandatory)][int]$Timeout,
    [Parameter(Mandatory)][int]$Settle,
    [Parameter(Mandatory)][bool]$IfIdle,
    [Parameter(Mandatory)][AllowEmptyString()][string]$ConfigPath,
    [Parameter(Mandatory)][AllowEmptyString()][string]$Account
)
$ErrorActionPreference = 'Stop'
$Ansible.Changed = $false

# AgentReading brings the account helpers and their C#: Add-Type runs only when a reading is asked
# for (Initialize-CmfNative, at the first LSA or netapi32 call), never for a bare start or stop.
#cmf:include AgentReading

# Before anything else: ConstrainedLanguage blocks what follows with errors that do not say why.
if (Test-CmfLanguageRefused) { return }

Add-Type -AssemblyName System.ServiceProcess
$MaxLogLines = 200  # enough for the agent's start-up and its error; the result stays small
$ServiceControlManagerEvents = @(7000, 7009, 7023, 7031, 7034)

function Get-LogPath([string]$ConfigText) {
    $folder = Get-CmfTomlString -Text $ConfigText -Table 'logging' -Key 'worker_logs_dir'
    if (-not $folder) { $folder = [IO.Path]::Combine($env:ProgramData, 'Amazon', 'Deadline', 'Logs') }
    [IO.Path]::Combine($folder, 'worker-agent.log')
}

function Get-FileLength([string]$Path) {
    if ([IO.File]::Exists($Path)) { return (New-Object IO.FileInfo $Path).Length }
    [long]0
}

function Get-LogLinesSince([string]$Path, [long]$Offset) {
    # The lines the agent appended after $Offset. A file shorter than that was rotated: all of it is new.
    if (-not [IO.File]::Exists($Path)) { return @() }
    $share = [IO.FileShare]::ReadWrite -bor [IO.FileShare]::Delete  # the agent keeps it open and rotates it
    $stream = New-Object IO.FileStream -ArgumentList $Path, ([IO.FileMode]::Open), ([IO.FileAccess]::Read), $share
    try {
        if ($stream.Length -lt $Offset) { $Offset = 0 }
        [void]$stream.Seek($Offset, [IO.SeekOrigin]::Begin)
        $reader = New-Object IO.StreamReader -ArgumentList $stream, (New-Object Text.UTF8Encoding -ArgumentList $false)
        $text = $reader.ReadToEnd()
    }
    finally {
        $stream.Dispose()
    }
    $lines = @($text -split "`r?`n" | Where-Object { $_ -ne '' })
    @($lines | Select-Object -Last $MaxLogLines)
}

function Get-ServiceEvents([string]$ServiceName, [string]$DisplayName, [DateTime]$Since) {
    # The Service Control Manager's words on this service since $Since: a start refused for the logon
    # (7000), a service that ended at once (7023, 7034, 7031) or whose process would not run (7009).
    # One of their insertion strings is the service's display name (the first, except for 7009).
    $filter = @{ LogName = 'System'; ProviderName = 'Service Control Manager'; Id = $ServiceControlManagerEvents; StartTime = $Since }
    try {
        $found = @(Get-WinEvent -FilterHashtable $filter -ErrorAction Stop)
    }
    catch {
        # NoMatchingEventsFound is how Get-WinEvent says "none"; an unreadable log is no reason to
        # hide the rest of the result either.
        return @()
    }
    $about = @($found | Where-Object {
            $values = @($_.Properties | ForEach-Object { [string]$_.Value })
            ($values -contains $DisplayName) -or ($values -contains $ServiceName)
        })
    @($about | Sort-Object -Property TimeCreated | ForEach-Object {
            $message = $_.Message
            if (-not $message) { $message = (@($_.Properties | ForEach-Object { [string]$_.Value }) -join '; ') }
            @{ id = [int]$_.Id; time = $_.TimeCreated.ToUniversalTime().ToString('o'); message = [string]$message }
        })
}

function Wait-Status([System.ServiceProcess.ServiceController]$Controller, [string]$Status, [int]$Seconds) {
    try {
        $Controller.WaitForStatus($Status, [TimeSpan]::FromSeconds($Seconds))
        return $true
    }
    catch [System.ServiceProcess.TimeoutException] {
        return $false
    }
}

# The Win32 answers to Start() and Stop() that mean the service is where it was asked to go: someone
# (the Service Control Manager's recovery, an operator) started or stopped it since it was looked at.
$ERROR_SERVICE_ALREADY_RUNNING = 1056
$ERROR_SERVICE_NOT_ACTIVE = 1062

function Invoke-ServiceControl([System.ServiceProcess.ServiceController]$Controller, [string]$Action) {
    # Start()/Stop() throw InvalidOperationException with the Win32 cause inside: $null when it worked,
    # else @{ win32_error; error } with the native code and the system's message.
    try {
        if ($Action -eq 'Start') { $Controller.Start() } else { $Controller.Stop() }
        return $null
    }
    catch {
        $cause = Get-CmfInnerException $_.Exception
        $native = $cause
        while ($null -ne $native -and -not ($native -is [ComponentModel.Win32Exception])) { $native = $native.InnerException }
        if ($null -ne $native) {
            $code = [int]$native.NativeErrorCode
            if (($Action -eq 'Start' -and $code -eq $ERROR_SERVICE_ALREADY_RUNNING) -or ($Action -eq 'Stop' -and $code -eq $ERROR_SERVICE_NOT_ACTIVE)) {
                return $null
            }
            return @{ win32_error = $code; error = "$Action`: $($native.Message)" }
        }
        return @{ win32_error = $null; error = "$Action`: $($cause.Message)" }
    }
}

$info = Get-AgentServiceInfo -Name $Name
if (-not $info.exists) {
    $Ansible.Result = @{ error_code = 'SERVICE_NOT_FOUND'; error = "the service $Name does not exist on $env:COMPUTERNAME" }
    return
}
$configText = ''
if ($ConfigPath) {
    # Only the log folder and the session root come from it: defaults are better than no stop.
    try { $configText = Read-CmfTextFile $ConfigPath } catch { Write-Warning "cannot read $ConfigPath`: $($_.Exception.Message)" }
}
$logPath = Get-LogPath $configText
$logOffset = Get-FileLength $logPath
$since = [DateTime]::Now.AddSeconds(-1)  # Get-WinEvent compares local times
$controller = New-Object System.ServiceProcess.ServiceController -ArgumentList $info.name
$sessions = Get-CmfAgentSessions -ServiceInfo $info -ConfigText $configText
$wasRunning = $controller.Status -eq 'Running'
$wouldStop = ($State -eq 'stopped' -or $State -eq 'restarted') -and $controller.Status -ne 'Stopped'
$restarted = $false
$started = $false
$failure = $null
$interrupted = 0
$skipped = $IfIdle -and $wouldStop -and $sessions.busy

if (-not $skipped -and $wouldStop) {
    # A service still starting does not accept a stop (1061): let it finish first.
    if ($controller.Status -eq 'StartPending') { [void](Wait-Status $controller 'Running' $Timeout) }
    $controller.Refresh()
    if ($controller.Status -ne 'Stopped' -and $controller.Status -ne 'StopPending') {
        # By key: on a hashtable, .count could mean its number of entries.
        if ($sessions.busy) { $interrupted = [int]$sessions['count'] }
        $failure = Invoke-ServiceControl $controller 'Stop'
    }
    if ($null -eq $failure) {
        $Ansible.Changed = $true
        if (-not (Wait-Status $controller 'Stopped' $Timeout)) {
            $failure = @{ win32_error = $null; error = "$Name did not stop within $Timeout seconds (it is $((Get-AgentServiceInfo -Name $Name).state))" }
        }
    }
}
if (-not $skipped -and $null -eq $failure -and ($State -eq 'restarted' -or ($State -eq 'started' -and -not $wasRunning))) {
    $controller.Refresh()
    if ($controller.Status -eq 'StopPending') { [void](Wait-Status $controller 'Stopped' $Timeout) }
    $controller.Refresh()
    if ($controller.Status -ne 'Running' -and $controller.Status -ne 'StartPending') {
        $failure = Invoke-ServiceControl $controller 'Start'
    }
    if ($null -eq $failure) {
        $Ansible.Changed = $true
        $started = $true
        $restarted = $State -eq 'restarted'
        if (-not (Wait-Status $controller 'Running' $Timeout)) {
            $now = (Get-AgentServiceInfo -Name $Name).state
            if ($now -eq 'start_pending') {
                # Started, not running yet: a timeout, said as one (not the exit code of a process that still runs).
                $failure = @{ win32_error = $null; error = "$Name did not reach running within $Timeout seconds (it is $now)" }
            }
            # Else its process ended during the wait (stopped, or stopping): no timeout, a crash, which the
            # exit code (and the Service Control Manager's events) below report.
        }
    }
}

$pidAfterAction = (Get-AgentServiceInfo -Name $Name).pid
$healthy = $false
if ($skipped) {
    $healthy = $wasRunning
}
elseif ($null -ne $failure) {
    $healthy = $false
}
elseif ($State -eq 'stopped') {
    $controller.Refresh()
    $healthy = $controller.Status -eq 'Stopped'
}
elseif ($null -ne $pidAfterAction) {
    if ($started) { Start-Sleep -Seconds $Settle }
    $after = Get-AgentServiceInfo -Name $Name
    $healthy = ($after.state -eq 'running') -and ($after.pid -eq $pidAfterAction)
}
$final = Get-AgentServiceInfo -Name $Name
$errorText = $null
$win32Error = $null
if ($null -ne $failure) {
    $errorText = $failure.error
    $win32Error = $failure.win32_error
}
elseif (-not $healthy -and $State -ne 'stopped') {
    $errorText = "the service's last exit code is $($final.exit_code) (service-specific $($final.service_specific_exit_code), state $($final.state))"
}
$reading = $null
if ($ConfigPath) { $reading = Get-CmfAgentReading -Service $Name -ConfigPath $ConfigPath -Account $Account }
$logTail = @()
$events = @()
if (-not $skipped) {
    $logTail = @(Get-LogLinesSince $logPath $logOffset)
    $events = @(Get-ServiceEvents $info.name $controller.DisplayName $since)
}
$Ansible.Result = @{
    changed = [bool]$Ansible.Changed
    state = $(if (@('running', 'start_pending', 'stop_pending') -contains $final.state) { $final.state } else { 'stopped' })
    restarted = $restarted
    healthy = [bool]$healthy
    pid = $final.pid
    previous_pid = $info.pid  # before this call acted (null when it was not running)
    error = $errorText
    win32_error = $win32Error
    exit_code = $final.exit_code
    service_specific_exit_code = $final.service_specific_exit_code
    busy = [bool]$sessions.busy
    sessions = $sessions
    interrupted = $interrupted
    log_tail = @($logTail)
    events = @($events)
    reading = $reading
}
