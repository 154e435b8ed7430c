# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# The agent's Windows service and what runs under it (#cmf:include AgentService): its configuration
# from the registry, its state and process from the Service Control Manager (Win32_Service), the
# render sessions it runs now, and the few worker.toml values the host side needs. No Add-Type.

#cmf:include Refusal

function Get-CmfTomlString {
    # A string value `key = "..."` or `key = '...'` inside [table] of worker.toml's text, else $null.
    # Deliberately minimal (the controller parses worker.toml for real): it finds the session root
    # and the log folder, which the agent writes as plain one-line strings.
    param([string]$Text, [string]$Table, [string]$Key)
    if (-not $Text) { return $null }
    $current = ''
    foreach ($line in ($Text -split "`r?`n")) {
        if ($line -match '^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]\s*(#.*)?$') { $current = $Matches[1]; continue }
        if ($current -ne $Table) { continue }
        if ($line -match ('^\s*' + [regex]::Escape($Key) + '\s*=\s*"((?:[^"\\]|\\.)*)"\s*(#.*)?$')) {
            return [regex]::Replace($Matches[1], '\\(["\\])', '$1')
        }
        if ($line -match ('^\s*' + [regex]::Escape($Key) + "\s*=\s*'([^']*)'\s*(#.*)?$")) {
            return $Matches[1]
        }
    }
    $null
}

function Read-CmfTextFile {
    # A file's text (UTF-8), '' when it does not exist; read shared, as its writer may hold it open.
    param([string]$Path)
    if (-not $Path -or -not [IO.File]::Exists($Path)) { return '' }
    $share = [IO.FileShare]::ReadWrite -bor [IO.FileShare]::Delete
    $stream = New-Object IO.FileStream -ArgumentList $Path, ([IO.FileMode]::Open), ([IO.FileAccess]::Read), $share
    try {
        $reader = New-Object IO.StreamReader -ArgumentList $stream, (New-Object Text.UTF8Encoding -ArgumentList $false)
        return $reader.ReadToEnd()
    }
    finally {
        $stream.Dispose()
    }
}

function Get-CmfLogonSid {
    # The SID of a service's logon name (StartName), $null when it does not resolve.
    param([string]$StartName)
    if (-not $StartName) { return $null }
    $wellKnown = Get-CmfServiceAccountSid $StartName
    if ($wellKnown) { return $wellKnown }
    $text = $StartName.Trim()
    if ($text.StartsWith('.\')) { $text = "$env:COMPUTERNAME\" + $text.Substring(2) }
    try {
        return (New-Object Security.Principal.NTAccount $text).Translate([Security.Principal.SecurityIdentifier]).Value
    }
    catch {
        return $null
    }
}

function Get-AgentServiceInfo {
    param([Parameter(Mandatory)][string]$Name)
    $escaped = $Name.Replace('\', '\\').Replace("'", "\'")
    $service = Get-CimInstance -ClassName Win32_Service -Filter "Name='$escaped'"
    if ($null -eq $service) {
        return @{ name = $Name; exists = $false }
    }
    $key = [Microsoft.Win32.Registry]::LocalMachine.OpenSubKey("SYSTEM\CurrentControlSet\Services\$($service.Name)")
    $environment = @()
    $pythonClass = $null
    if ($null -ne $key) {
        try {
            $value = $key.GetValue('Environment', $null)
            if ($null -ne $value) { $environment = @($value) }
            $classKey = $key.OpenSubKey('PythonClass')
            if ($null -ne $classKey) {
                try { $pythonClass = $classKey.GetValue('', $null) } finally { $classKey.Dispose() }
            }
        }
        finally {
            $key.Dispose()
        }
    }
    $processId = $null
    $startedAt = $null
    if ($service.State -eq 'Running' -and $service.ProcessId -gt 0) {
        $processId = [int]$service.ProcessId
        # When the running agent read worker.toml: it reads it only at start.
        $process = Get-Process -Id $processId -ErrorAction SilentlyContinue
        if ($null -ne $process) { $startedAt = $process.StartTime.ToUniversalTime().ToString('o') }
    }
    return @{
        name = [string]$service.Name
        exists = $true
        state = ([string]$service.State).ToLowerInvariant().Replace(' ', '_')
        start_mode = ([string]$service.StartMode).ToLowerInvariant()
        account = [string]$service.StartName
        account_sid = Get-CmfLogonSid ([string]$service.StartName)
        environment = [string[]]@($environment)
        pid = $processId
        started_at = $startedAt
        image_path = [string]$service.PathName
        python_class = $pythonClass
        exit_code = [long]$service.ExitCode  # uint32: [int] throws above 0x7FFFFFFF
        # Meaningful when exit_code is 1066 (ERROR_SERVICE_SPECIFIC_ERROR): the service's own code.
        service_specific_exit_code = [long]$service.ServiceSpecificExitCode
    }
}

function Get-CmfDescendantProcesses {
    # Every process below $ProcessId: @{ pid; name }. A parent id can be stale (Windows reuses ids), so
    # a child counts only when it started after its parent.
    param([int]$ProcessId)
    $all = @(Get-CimInstance -ClassName Win32_Process -Property 'ProcessId', 'ParentProcessId', 'Name', 'CreationDate')
    $byParent = @{}
    $created = @{}
    foreach ($process in $all) {
        $created[[int]$process.ProcessId] = $process.CreationDate
        $parent = [int]$process.ParentProcessId
        if (-not $byParent.ContainsKey($parent)) { $byParent[$parent] = [Collections.Generic.List[object]]@() }
        $byParent[$parent].Add($process)
    }
    $found = [Collections.Generic.List[object]]@()
    $queue = New-Object 'Collections.Generic.Queue[int]'
    $queue.Enqueue($ProcessId)
    $seen = @{ $ProcessId = $true }
    while ($queue.Count -gt 0) {
        $parent = $queue.Dequeue()
        if (-not $byParent.ContainsKey($parent)) { continue }
        foreach ($child in $byParent[$parent]) {
            $childId = [int]$child.ProcessId
            if ($seen.ContainsKey($childId)) { continue }
            if ($null -ne $created[$parent] -and $null -ne $child.CreationDate -and $child.CreationDate -lt $created[$parent]) { continue }
            $seen[$childId] = $true
            $found.Add(@{ pid = $childId; name = [string]$child.Name })
            $queue.Enqueue($childId)
        }
    }
    @($found)
}

function Get-CmfAgentSessions {
    # The render sessions the agent runs now: {busy, count, ids, processes, directories, root, worker_id}.
    # The agent runs every session inside its own process (no separate openjd process): a session at
    # work shows as descendant processes of the service's process. Session directories linger after a
    # crash or with retain_session_dir, so they count only while something runs (a hint, not proof).
    param([hashtable]$ServiceInfo, [string]$ConfigText)
    $root = Get-CmfTomlString -Text $ConfigText -Table 'worker' -Key 'session_root_dir'
    if (-not $root) { $root = [IO.Path]::Combine($env:ProgramData, 'Amazon', 'OpenJD') }
    $processes = @()
    if ($ServiceInfo.exists -and $null -ne $ServiceInfo.pid) {
        $processes = @(Get-CmfDescendantProcesses -ProcessId $ServiceInfo.pid)
    }
    $directories = @()
    if ([IO.Directory]::Exists($root)) {
        $directories = @([IO.Directory]::GetDirectories($root) | Sort-Object)
    }
    $workerId = $null
    $workerJson = [IO.Path]::Combine($env:ProgramData, 'Amazon', 'Deadline', 'Cache', 'worker.json')
    try {
        $text = Read-CmfTextFile $workerJson
        if ($text) { $workerId = [string](ConvertFrom-Json -InputObject $text).worker_id }
    }
    catch {
        $workerId = $null  # a worker.json being rewritten now: the id is a label, not a decision
    }
    if (-not $workerId) { $workerId = $null }
    $busy = $processes.Count -gt 0
    @{
        busy = $busy
        count = $(if ($busy) { [Math]::Max(1, $directories.Count) } else { 0 })
        ids = @($directories | ForEach-Object { [IO.Path]::GetFileName($_) })
        processes = @($processes)
        directories = @($directories)
        root = $root
        worker_id = $workerId
    }
}
