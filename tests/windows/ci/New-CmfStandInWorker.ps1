# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# CI only, on a disposable Windows runner (.github/workflows/windows.yml, the Ansible leg): a worker
# as the agent's own installer leaves it, with a stand-in for the agent's service.
#  - The agent, $AgentVersion of deadline-cloud-worker-agent, in a virtual environment of $Python
#    under $Root, and its installer run as on a CMF worker (install-deadline-worker, with fake farm
#    and fleet ids of the right shape): it makes the agent's account (in Administrators), grants it
#    its rights, makes the job users' group and writes worker.toml, without the opt-in.
#  - The installer installs the service DeadlineWorker as on a worker: as the agent's account, with
#    the rights a service account needs (Log on as a service, Replace a process level token; the
#    installer grants them only when it installs the service, and sc.exe config obj= grants none, so
#    the service could not log on: 1069), its failure actions and AWS_DEFAULT_REGION in its own
#    environment. Then its ImagePath is pointed at a stand-in program in the environment's Scripts
#    folder (so the collection finds python.exe beside it, as it finds pywin32's). The real agent
#    service would stop at once here: it needs AWS credentials and a farm. The stand-in does not read
#    worker.toml, so a restart proves the Service Control Manager side (logon, start, settle), not
#    the agent's own start-up checks, which the collection reads from worker.toml.
#Requires -Version 5.1
param(
    [Parameter(Mandatory)][string]$Python,
    [Parameter(Mandatory)][string]$AgentVersion,
    [string]$Root = (Join-Path $env:SystemDrive 'cmf-ci'),
    [string]$AgentUser = 'deadline-worker'
)
$ErrorActionPreference = 'Stop'

function Invoke-Checked {
    # A native program; its output is shown, and a non-zero exit stops the script. Continue in this
    # scope: under Stop, Windows PowerShell 5.1 ends at the first stderr line (pip writes warnings there).
    param([Parameter(Mandatory)][string]$FilePath, [string[]]$ArgumentList = @())
    $ErrorActionPreference = 'Continue'
    & $FilePath @ArgumentList 2>&1 | ForEach-Object { [string]$_ } | Write-Output
    if ($LASTEXITCODE -ne 0) { throw "$FilePath $($ArgumentList -join ' ') exited with $LASTEXITCODE" }
}

$venv = Join-Path $Root 'agent'
Invoke-Checked $Python @('-m', 'venv', $venv)
$venvPython = Join-Path $venv 'Scripts\python.exe'
Invoke-Checked $venvPython @('-m', 'pip', 'install', '--disable-pip-version-check', "deadline-cloud-worker-agent==$AgentVersion")

$bytes = New-Object byte[] 24
$random = New-Object Security.Cryptography.RNGCryptoServiceProvider
try { $random.GetBytes($bytes) } finally { $random.Dispose() }
$password = 'Cmf-9x' + [Convert]::ToBase64String($bytes).Replace('/', 'a').Replace('+', 'b').Replace('=', 'c')
if ($env:GITHUB_ACTIONS) { Write-Output "::add-mask::$password" }
$installer = Join-Path $venv 'Scripts\install-deadline-worker.exe'
Invoke-Checked $installer @(
    '--farm-id', 'farm-00000000000000000000000000000000', '--fleet-id', 'fleet-00000000000000000000000000000000',
    '--region', 'us-west-2', '--user', $AgentUser, '--password', $password, '--allow-shutdown', '--yes')

$source = @'
using System.ServiceProcess;
using System.Threading;

// Stands in for the agent's service: it runs until it is stopped, and does nothing else.
public class CmfStandInWorkerService : ServiceBase
{
    readonly ManualResetEvent stopped = new ManualResetEvent(false);
    protected override void OnStart(string[] args) { new Thread(() => stopped.WaitOne()).Start(); }
    protected override void OnStop() { stopped.Set(); }
    public static void Main() { ServiceBase.Run(new CmfStandInWorkerService()); }
}
'@
$sourceFile = Join-Path $Root 'CmfStandInWorkerService.cs'
[IO.File]::WriteAllText($sourceFile, $source)
$program = Join-Path $venv 'Scripts\CmfStandInWorkerService.exe'
# Windows PowerShell 5.1 passes an argument with embedded quotes to a native program unescaped: the
# path goes to sc.exe bare, so it must hold no space.
if ($program.Contains(' ')) { throw "the stand-in's path must hold no space (sc.exe binPath=): $program; give another -Root" }
$compiler = Join-Path $env:WINDIR 'Microsoft.NET\Framework64\v4.0.30319\csc.exe'
Invoke-Checked $compiler @('/nologo', '/target:exe', '/reference:System.ServiceProcess.dll', "/out:$program", $sourceFile)

# The installer's service, account, rights and environment stay; only the program it runs changes.
$installed = Get-CimInstance -ClassName Win32_Service -Filter "Name='DeadlineWorker'"
if ($null -eq $installed) { throw 'the installer made no DeadlineWorker service' }
Invoke-Checked 'sc.exe' @('config', 'DeadlineWorker', 'binPath=', $program)
Start-Service -Name DeadlineWorker
$config = Join-Path $env:ProgramData 'Amazon\Deadline\Config\worker.toml'
if (-not [IO.File]::Exists($config)) { throw "the installer wrote no $config" }
Write-Output "DeadlineWorker runs as .\$AgentUser; $config is the installer's"
