# Reading the agent's Windows service: its configuration from the registry and its state and
# process from the Service Control Manager (Win32_Service).
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
        environment = [string[]]$environment
        pid = $processId
        started_at = $startedAt
        image_path = [string]$service.PathName
        python_class = $pythonClass
        exit_code = [int]$service.ExitCode
    }
}
