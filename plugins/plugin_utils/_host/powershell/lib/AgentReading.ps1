# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Everything the agent's decision depends on, read in one go (#cmf:include AgentReading):
# Get-CmfAgentReading returns what read_agent_info returns, and control_service returns the same
# reading after it acted (the verification, in the same call).

#cmf:include Refusal
#cmf:include Sha256
#cmf:include AgentService
#cmf:include Accounts

function Get-CmfServicePython {
    # pywin32 runs the service through pythonservice.exe in the Python's exec_prefix (domain notes, section 5).
    param([hashtable]$ServiceInfo)
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

function Invoke-CmfProgram {
    # Runs a program with its own stdout and stderr: @{ exit_code; stdout; stderr }. Not `& program
    # 2>&1`: Windows PowerShell 5.1 under ErrorActionPreference Stop turns the first stderr line into
    # a terminating error. stderr is read asynchronously so that neither pipe can fill and block.
    param([string]$FilePath, [string]$Arguments, [int]$TimeoutSeconds = 120)
    $start = New-Object Diagnostics.ProcessStartInfo
    $start.FileName = $FilePath
    $start.Arguments = $Arguments
    $start.UseShellExecute = $false
    $start.CreateNoWindow = $true
    $start.RedirectStandardOutput = $true
    $start.RedirectStandardError = $true
    $process = [Diagnostics.Process]::Start($start)
    try {
        $stderrRead = $process.StandardError.ReadToEndAsync()
        $stdoutRead = $process.StandardOutput.ReadToEndAsync()
        if (-not $process.WaitForExit($TimeoutSeconds * 1000)) {
            try { $process.Kill() } catch { Write-Verbose "the program had ended meanwhile" }
            return @{ exit_code = $null; stdout = ''; stderr = "$FilePath did not finish within $TimeoutSeconds seconds" }
        }
        $process.WaitForExit()  # the pipes are complete only after the parameterless wait
        return @{ exit_code = $process.ExitCode; stdout = $stdoutRead.Result; stderr = $stderrRead.Result }
    }
    finally {
        $process.Dispose()
    }
}

function Get-CmfAgentVersion {
    param([hashtable]$ServiceInfo)
    $python = Get-CmfServicePython $ServiceInfo
    $result = @{ version = $null; location = $null; python = $python; error = $null }
    if (-not $python) {
        $result.error = "no python.exe beside the service's executable ($($ServiceInfo.image_path))"
        return $result
    }
    # -I: no PYTHON* variables, no user site. The version from the distribution's metadata and the
    # folder from find_spec: nothing of the agent is imported (its import has side effects and can
    # fail on its own). No double quotes in the code: it travels inside one quoted argument.
    $code = 'import json,os,importlib.util as u;from importlib.metadata import version as v;' +
    "s=u.find_spec('deadline_worker_agent');" +
    "print(json.dumps([v('deadline-cloud-worker-agent'),os.path.dirname(s.origin) if s and s.origin else None]))"
    try {
        $run = Invoke-CmfProgram -FilePath $python -Arguments "-I -c `"$code`""
        if ($run.exit_code -ne 0) {
            $result.error = "$python exited with $($run.exit_code): $(([string]$run.stderr).Trim())"
            return $result
        }
        $lines = @(([string]$run.stdout) -split "`r?`n" | Where-Object { $_.Trim() })
        $parsed = @(ConvertFrom-Json -InputObject $lines[-1])
        $result.version = [string]$parsed[0]
        $result.location = $(if ($null -ne $parsed[1]) { [string]$parsed[1] } else { $null })
    }
    catch {
        $result.error = "reading the agent's version with $python failed: $($_.Exception.Message) $(([string]$run.stderr).Trim())".Trim()
    }
    return $result
}

function Read-CmfAgentVariables {
    # The agent's variables (DEADLINE_WORKER_*, case-insensitive as Windows names are, which is what
    # the agent's settings read) of an open Environment key, which is then closed; $null for no key.
    param([Microsoft.Win32.RegistryKey]$Key)
    if ($null -eq $Key) { return $null }
    $variables = @{}
    try {
        foreach ($name in $Key.GetValueNames()) {
            if ($name -like 'DEADLINE_WORKER_*') { $variables[$name] = [string]$Key.GetValue($name) }
        }
    }
    finally {
        $Key.Dispose()
    }
    return $variables
}

function Get-CmfMachineAgentVariables {
    $variables = Read-CmfAgentVariables ([Microsoft.Win32.Registry]::LocalMachine.OpenSubKey('SYSTEM\CurrentControlSet\Control\Session Manager\Environment'))
    if ($null -eq $variables) { return @{} }
    return $variables
}

function Get-CmfUserAgentVariables {
    # DEADLINE_WORKER_* among the logon account's own user variables (HKU\<sid>\Environment), or $null.
    # Uncertain, so reported as a hint: the Service Control Manager builds a service's environment
    # from the machine variables and the account's profile, but whether a user variable reaches the
    # agent depends on the profile being loaded when the service starts (it is read only at start),
    # and the hive is readable here only while it is loaded (a logon, or a running service of that
    # account): null means "not known", never "none". LocalSystem's HKU\S-1-5-18 is the default
    # profile, not a user's own variables: null as well.
    param([string]$Sid)
    if (-not $Sid -or $Sid -eq 'S-1-5-18') { return $null }
    try {
        $key = [Microsoft.Win32.Registry]::Users.OpenSubKey("$Sid\Environment")
    }
    catch {
        return $null
    }
    return Read-CmfAgentVariables $key
}

function Get-CmfServiceToken {
    # Whether the token the service's process runs with holds Administrators (S-1-5-32-544) as an
    # enabled group: what the agent and its WORKER_AGENT_USER jobs have until the service restarts,
    # whatever the account's groups are now (a process keeps the token it started with).
    # @{ administrators; error }: both $null when the service does not run; administrators $null and
    # why when the token cannot be read, never a guess. The process is the one of the id and start time
    # Get-AgentServiceInfo read: one that started at another time (the service restarted meanwhile,
    # its id reused) is not taken for it.
    param([hashtable]$ServiceInfo)
    if (-not $ServiceInfo.exists -or $null -eq $ServiceInfo.pid) { return @{ administrators = $null; error = $null } }
    Initialize-CmfNative
    try {
        $token = [DeadlineCloudCmf.ProcessToken]::Read([int]$ServiceInfo.pid)
    }
    catch {
        $cause = Get-CmfInnerException $_.Exception
        return @{ administrators = $null; error = "the token of $($ServiceInfo.name)'s process $($ServiceInfo.pid) cannot be read: $($cause.Message)" }
    }
    $started = [DateTime]::FromFileTimeUtc($token.CreatedFileTime).ToString('o')
    if ($started -ne $ServiceInfo.started_at) {
        return @{ administrators = $null; error = ("process $($ServiceInfo.pid) started at $started, not at $($ServiceInfo.started_at) as " +
                "$($ServiceInfo.name)'s did when it was read: the service restarted meanwhile") }
    }
    @{ administrators = (@($token.Sids) -contains 'S-1-5-32-544'); error = $null }
}

function Get-CmfAgentReading {
    # read_agent_info's result: {agent, service, machine_environment, user_environment, account,
    # account_error, config, sessions} (see read_agent_info.ps1).
    param([string]$Service, [string]$ConfigPath, [string]$Account)
    $serviceInfo = Get-AgentServiceInfo -Name $Service
    $agent = @{ version = $null; location = $null; python = $null; error = "the service $Service does not exist" }
    if ($serviceInfo.exists) {
        $agent = Get-CmfAgentVersion $serviceInfo
        $token = Get-CmfServiceToken $serviceInfo
        $serviceInfo.token_administrators = $token.administrators
        $serviceInfo.token_error = $token.error
    }

    $accountName = $Account
    if (-not $accountName -and $serviceInfo.exists) { $accountName = [string]$serviceInfo.account }
    $accountReport = $null
    $accountError = $null
    # (Under ConstrainedLanguage the operations refuse before reading anything: Test-CmfLanguageRefused.)
    if ($accountName) {
        try {
            $accountReport = Get-AccountReport -Account $accountName
        }
        catch {
            # An account that does not resolve must not hide the rest of the reading.
            $refusal = Get-CmfRefusal $_
            if ($refusal) {
                $accountError = @{ code = $refusal.error_code; message = $refusal.error }
            }
            else {
                $inner = Get-CmfInnerException $_.Exception
                $accountError = @{ code = 'HOST_ERROR'; message = "$accountName`: $($inner.Message)" }
            }
        }
    }

    $config = @{ path = $ConfigPath; exists = $false; content = ''; modified_at = $null; sha256 = '' }
    $configText = ''
    if ($ConfigPath -and [IO.File]::Exists($ConfigPath)) {
        $bytes = [IO.File]::ReadAllBytes($ConfigPath)
        $config.exists = $true
        $config.content = [Convert]::ToBase64String($bytes)
        $config.modified_at = [IO.File]::GetLastWriteTimeUtc($ConfigPath).ToString('o')
        $config.sha256 = Get-CmfSha256Hex $bytes
        $configText = (New-Object Text.UTF8Encoding -ArgumentList $false).GetString($bytes)
    }
    $userEnvironment = $null
    if ($serviceInfo.exists) { $userEnvironment = Get-CmfUserAgentVariables -Sid $serviceInfo.account_sid }

    @{
        agent = $agent
        service = $serviceInfo
        machine_environment = Get-CmfMachineAgentVariables
        user_environment = $userEnvironment
        account = $accountReport
        account_error = $accountError
        config = $config
        sessions = Get-CmfAgentSessions -ServiceInfo $serviceInfo -ConfigText $configText
    }
}
