# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Windows PowerShell 5.1 pitfalls (pwsh_pitfalls.py): each rule flags its sample and passes
the safe form, and every operation's script, as it is sent, has none of them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from quality.pwsh_pitfalls import RULES, check, csharp5_violations

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.operations import OPERATIONS
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.powershell_host import PowerShellHost, script_text


def ps(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def add_type(csharp: str, how: str = "-TypeDefinition") -> str:
    """``csharp`` given to Add-Type in a here-string, as Accounts.ps1 does."""
    return f"Add-Type {how} @'\n{ps(csharp)}\n'@"


# Each flagged sample marks the line the finding must point at with `<-`.
FLAGGED = [
    # PS001: $null to a .NET method
    ("PS001", "[IO.File]::Replace($temp, $Path, $null)  # <-"),
    ("PS001", "$text = [IO.Path]::Combine(\n    $folder,\n    $null)  # <-"),
    ("PS001", "$builder = [Text.StringBuilder]::new()\n[void]$builder.Append($null)  # <-"),
    # a method of the script's own C#, whose signature says the parameter is a string
    (
        "PS001",
        ps("""
            Add-Type -TypeDefinition @'
            public static class Lsa {
                public static void Grant(string sid, string[] rights, object state) { }
            }
            '@
            [Lsa]::Grant($null, $null, $null)  # <-
        """),
    ),
    # PS002: a native command, stderr redirected, $ErrorActionPreference Stop
    ("PS002", "$ErrorActionPreference = 'Stop'\n$output = & $python -c $code 2>&1  # <-"),
    ("PS002", "$ErrorActionPreference = 'Stop'\nC:\\Tools\\probe.exe --version 2>&1  # <-"),
    ("PS002", "$ErrorActionPreference = 'Stop'\nicacls.exe C:\\ProgramData 2>$null  # <-"),
    ("PS002", "$ErrorActionPreference = 'Stop'\n& 'C:\\Program Files\\Python\\python.exe' -V *>&1  # <-"),
    ("PS002", "$ErrorActionPreference = [Management.Automation.ActionPreference]::Stop\ncmd /c ver 2>&1  # <-"),
    # a function runs with the preference its caller set, even one set after the definition
    (
        "PS002",
        ps("""
            function Get-Version {
                & $python -V 2>&1  # <-
            }
            $ErrorActionPreference = 'Stop'
            Get-Version
        """),
    ),
    # Continue set only after the native command does not help it
    (
        "PS002",
        ps("""
            $ErrorActionPreference = 'Stop'
            function Get-Version {
                cmd.exe /c ver 2>&1  # <-
                $ErrorActionPreference = 'Continue'
            }
        """),
    ),
    # PS003: a script function's list used without @()
    ("PS003", "function Get-Lines { return [string[]]@('a') }\n$lines = Get-Lines  # <-"),
    ("PS003", "function Get-Lines { return @('a') }\n$Ansible.Result = @{\n    lines = Get-Lines  # <-\n}"),
    (
        "PS003",
        ps("""
            function Get-Tail([string[]]$Lines) {
                return [string[]]($Lines | Select-Object -Last 20)
            }
            $Ansible.Result = @{ tail = Get-Tail $x }  # <-
        """),
    ),
    ("PS003", "function Get-Items {\n    foreach ($i in 1..3) { @{ n = $i } }\n}\nWrite-Items -Items (Get-Items)  # <-"),
    ("PS003", "function Get-Items {\n    $list | Select-Object -First 5\n}\n$first = (Get-Items)[0]  # <-"),
    # a function that outputs another one's list outputs a list too
    (
        "PS003",
        ps("""
            function Get-Lines { [string[]]@('a') }
            function Get-Sorted { Get-Lines | Sort-Object }
            $sorted = Get-Sorted  # <-
        """),
    ),
    ("PS003", "function Get-Lines { return 'a', 'b' }\n$result = @{ report = $(if ($ok) { Get-Lines } else { $null }) }  # <-"),
    # PS004: hashes that throw on a FIPS host
    ("PS004", "$sha = [Security.Cryptography.SHA256]::Create()  # <-"),
    ("PS004", "$sha = [System.Security.Cryptography.SHA256Managed]::new()  # <-"),
    ("PS004", "$sha = New-Object Security.Cryptography.SHA1Managed  # <-"),
    ("PS004", "$md5 = [Security.Cryptography.MD5]::Create()  # <-"),
    ("PS004", "$sha = [Security.Cryptography.HashAlgorithm]::Create('SHA-512')  # <-"),
    (
        "PS004",
        add_type("""
            public static class H {
                public static byte[] Hash(byte[] b) {
                    return System.Security.Cryptography.SHA256.Create().ComputeHash(b);  // <-
                }
            }
        """),
    ),
    ("PS004", add_type('public static class H {\n    static object A() { return HashAlgorithm.Create("SHA256"); }  // <-\n}')),
    # PS005: C# beyond C# 5 in Add-Type
    ("PS005", add_type('public class A {\n    public string Name => "a";  // <-\n}')),
    ("PS005", add_type("public class A {\n    public static int Twice(int x) => x * 2;  // <-\n}")),
    ("PS005", add_type('public class A {\n    public static string Hi(string n) { return $"hi {n}"; }  // <-\n}')),
    (
        "PS005",
        add_type("""
            public class A {
                public static int P(string s) {
                    int.TryParse(s, out var n);  // <-
                    return n;
                }
            }
        """),
    ),
    ("PS005", add_type("public class A {\n    public static bool P(string s) { return int.TryParse(s, out _); }  // <-\n}")),
    ("PS005", add_type("public class A {\n    public static int? L(string s) { return s?.Length; }  // <-\n}")),
    ("PS005", add_type("public class A {\n    public static char? F(string s) { return s?[0]; }  // <-\n}")),
    ("PS005", add_type("public class A {\n    public static string N() { return nameof(N); }  // <-\n}")),
    ("PS005", add_type("public class A {\n    public static bool S(object o) { return o is string s && s.Length > 0; }  // <-\n}")),
    ("PS005", add_type("public class A {\n    public static bool V(object o) { return o is var v; }  // <-\n}")),
    ("PS005", add_type("public class A {\n    public static (int, string) Pair() { return Make(); }  // <-\n}")),
    ("PS005", add_type("public class A {\n    public static int D() { int x = default; return x; }  // <-\n}")),
    (
        "PS005",
        add_type("""
            public class A {
                public static int F(int x) {
                    int Twice(int y) { return y * 2; }  // <-
                    return Twice(x);
                }
            }
        """),
    ),
    ("PS005", add_type("public class A {\n    public string Code { get; }  // <-\n}")),
    # -MemberDefinition, and C# given through a variable or positionally
    ("PS005", add_type("public static int Twice(int x) => x * 2;  // <-", how="-Name N -Namespace W -MemberDefinition")),
    ("PS005", add_type("public class A {\n    public static int? L(string s) { return s?.Length; }  // <-\n}", how="")),
    (
        "PS005",
        ps("""
            $source = @'
            public class A {
                public static string N() { return nameof(A); }  // <-
            }
            '@
            Add-Type -TypeDefinition $source
        """),
    ),
    # PS006: a custom date format in the current culture
    ("PS006", "$stem = '{0}.{1}' -f $Path, [DateTime]::UtcNow.ToString('yyyyMMdd-HHmmss')  # <-"),
    ("PS006", "$stamp = $Context.Now.AddSeconds(5).ToString('yyyyMMdd-HHmmss')  # <-"),
    ("PS006", "$day = Get-Date -Format 'yyyy-MM-dd'  # <-"),
    ("PS006", "$name = '{0}.{1:yyyyMMdd-HHmmss}.bak' -f $Path, [DateTime]::UtcNow  # <-"),
]

PASSING = [
    ("PS001", "[IO.File]::Replace($temp, $Path, [NullString]::Value)"),
    ("PS001", "$value = $key.GetValue('Environment', $null)"),  # RegistryKey.GetValue(string, object)
    ("PS001", "if ($null -eq $x) { Set-Thing -Value $null }\n$x.Method($nullable)"),
    ("PS001", "$connect = $socket.BeginConnect($hostname, $port, $null, $null)"),  # AsyncCallback, object
    (
        "PS001",
        ps("""
            Add-Type -TypeDefinition @'
            public static class Lsa {
                public static void Grant(string[] rights, object state) { }
            }
            '@
            [Lsa]::Grant($null, $null)
        """),
    ),
    ("PS002", "$output = & $python -c $code 2>&1"),  # $ErrorActionPreference is Continue
    (
        "PS002",
        ps("""
            $ErrorActionPreference = 'Stop'
            function Get-Version {
                $ErrorActionPreference = 'Continue'
                & $python -V 2>&1
            }
        """),
    ),
    (
        "PS002",
        ps("""
            $ErrorActionPreference = 'Stop'
            $version = & {
                $ErrorActionPreference = 'Continue'
                cmd.exe /c ver 2>&1
            }
        """),
    ),
    # a cmdlet, a scriptblock, a native command without redirection
    ("PS002", "$ErrorActionPreference = 'Stop'\n$item = Get-Item C:\\x 2>&1\n$block = { 1 }\n& $block 2>&1\n& $python -V"),
    ("PS003", "function Get-Lines { return [string[]]@('a') }\n$lines = @(Get-Lines)\n$Ansible.Result = @{ lines = @(Get-Lines) }"),
    (
        "PS003",
        ps("""
            function Get-Lines { return @('a') }
            foreach ($l in Get-Lines) { }
            if (Get-Lines) { }
            $text = (Get-Lines) -join ','
            $first, $rest = Get-Lines
            Get-Lines | ForEach-Object { $_ }
        """),
    ),
    # `,$list` hands the list over whole: assigning it keeps it
    ("PS003", "function Get-Pair { return ,[string[]]@('a') }\n$pair = Get-Pair"),
    # one item by design, a hashtable, and loops that only count or call methods
    ("PS003", "function Find-Group { return $groups | Where-Object { $_.sid -eq $sid } | Select-Object -First 1 }\n$group = Find-Group"),
    ("PS003", "function Get-Report { $l = @(Get-Lines); return @{ lines = $l } }\nfunction Get-Lines { ,@('a') }\n$report = Get-Report"),
    (
        "PS003",
        ps("""
            function Get-Count {
                $names = [Collections.Generic.List[string]]@()
                foreach ($i in 1..3) { $names.Add([string]$i) > $null; $n++ }
                return $names.Count
            }
            $count = Get-Count
        """),
    ),
    (
        "PS004",
        ps("""
            $sha = [Security.Cryptography.SHA256CryptoServiceProvider]::new()
            $other = New-Object Security.Cryptography.SHA256CryptoServiceProvider
            $ok = $sha -is [Security.Cryptography.SHA256]
        """),
    ),
    # CryptoConfig maps SHA1 (and no name) to SHA1CryptoServiceProvider; a CSP by name is fine too
    (
        "PS004",
        ps("""
            $sha1 = [Security.Cryptography.SHA1]::Create()
            $default = [Security.Cryptography.HashAlgorithm]::Create()
            $named = [Security.Cryptography.SHA256]::Create('System.Security.Cryptography.SHA256CryptoServiceProvider')
        """),
    ),
    (
        "PS004",
        add_type("""
            public static class H {
                public static byte[] Hash(byte[] b) {
                    // not SHA256.Create() nor SHA256Managed: they throw with the FIPS policy on
                    using (var sha = new System.Security.Cryptography.SHA256CryptoServiceProvider()) { return sha.ComputeHash(b); }
                }
                static object Named() { return System.Security.Cryptography.HashAlgorithm.Create("SHA256CryptoServiceProvider"); }
            }
        """),
    ),
    (
        "PS006",
        ps("""
            $stamp = [DateTime]::UtcNow.ToString('yyyyMMdd-HHmmss', [Globalization.CultureInfo]::InvariantCulture)
            $time = $process.StartTime.ToUniversalTime().ToString('o')
            $hex = $status.ToString('X8')
            $text = '{0:X8} {1}' -f $code, $message
            $now = Get-Date -Format o
        """),
    ),
    ("PS005", "Add-Type -AssemblyName System.ServiceProcess"),
    (
        "PS005",
        add_type("""
            using System;
            using System.Collections.Generic;
            using System.Linq;
            using System.Runtime.InteropServices;
            namespace N
            {
                public delegate int Op(int a, int b);
                public enum Color { Red = 1, Green = 2 }
                [StructLayout(LayoutKind.Sequential, CharSet = CharSet.Unicode)]
                public struct S { public int A; }
                public class C<T> : IDisposable where T : class, new()
                {
                    static readonly Func<int, int> Twice = x => x * 2;
                    static readonly Func<int, int, int> Add = (a, b) => a + b;
                    int?[] maybes = new int?[3];
                    public string Name { get; private set; }
                    public int this[int i] { get { return i; } }
                    public C() : this("x") { }
                    public C(string name) : base() { Name = name; }
                    public static C<T> operator +(C<T> a, C<T> b) { return a; }
                    public T Make() { return default(T); }
                    public void Dispose() { }
                    public IEnumerable<int> Numbers(int[] xs)
                    {
                        var seen = new Dictionary<string, int> { { "a", 1 }, { "b", 2 } };
                        for (int i = 0, j = 10; i < j; i++, j--) { }
                        foreach (var x in xs.Where(v => v > 0).Select((v, i) => v + i)) { yield return x; }
                        Op op = delegate (int a, int b) { return a - b; };
                        switch (xs.Length) { case 0: break; default: break; }
                        try { Marshal.PtrToStructure(new IntPtr(0), typeof(S)); }
                        catch (ArgumentException e) { throw new InvalidOperationException("x", e); }
                        string s = @"a ""b"" $c => d";  // out var x, nameof(x), $"..." in a comment
                        bool b = xs is int[] && s.Length > 0;
                        var anon = new { A = 1, B = "b" };
                        object o = b ? (object)1 : null;
                    }
                }
            }
        """),
    ),
]


def _marked_line(sample: str) -> int:
    (line,) = [number for number, text in enumerate(sample.splitlines(), start=1) if "<-" in text]
    return line


@pytest.mark.parametrize(("rule", "sample"), FLAGGED, ids=[f"{rule}-{n}" for n, (rule, _sample) in enumerate(FLAGGED)])
def test_a_pitfall_is_flagged_at_its_line(rule, sample):
    findings = check(sample)
    assert [(f.rule, f.line) for f in findings] == [(rule, _marked_line(sample))], "\n".join(map(str, findings))


@pytest.mark.parametrize(("rule", "sample"), PASSING, ids=[f"{rule}-{n}" for n, (rule, _sample) in enumerate(PASSING)])
def test_the_safe_form_passes(rule, sample):
    assert [str(f) for f in check(sample)] == []


def test_every_rule_has_a_flagged_and_a_passing_sample():
    assert {rule for rule, _sample in FLAGGED} == set(RULES)
    assert {rule for rule, _sample in PASSING} == set(RULES)


def test_the_starting_error_action_counts_for_native_commands():
    script = "& $python -V 2>&1"
    assert check(script) == []
    assert [f.rule for f in check(script, error_action="Stop")] == ["PS002"]


def test_a_finding_points_at_the_column_and_says_why_and_how_to_fix():
    (finding,) = check("$ErrorActionPreference = 'Stop'\n[IO.File]::Replace($temp, $Path, $null)")
    assert (finding.line, finding.column) == (2, 34)
    assert "[NullString]::Value" in str(finding)
    assert "Replace" in finding.message


def test_csharp_in_strings_and_comments_is_not_code():
    assert csharp5_violations('var s = "x?.y => nameof(z)"; // out var q\n/* (int, string) */ char c = \'"\';') == []
    assert [what for _line, what in csharp5_violations('var s = $"{x}";')] == ['interpolated string $"..." (C# 6)']


def test_out_underscore_is_a_discard_only_when_no_variable_is_named_underscore():
    call = "Native.Duplicate(handle, out _, 0);"
    assert [what for _line, what in csharp5_violations(call)] == ["out _ (C# 7)"]
    assert csharp5_violations("IntPtr _ = IntPtr.Zero;\n" + call) == []


class _RecordingAction:
    def __init__(self) -> None:
        self.sent: list[dict] = []

    def _execute_module(self, module_name: str, module_args: dict, task_vars: dict) -> dict:
        self.sent.append(module_args)
        return {"changed": False, "result": {"exists": False, "content": "", "sha256": ""}}


def _error_action_sent() -> str:
    """The $ErrorActionPreference that PowerShellHost has win_powershell set before each script."""
    action = _RecordingAction()
    PowerShellHost(action, {}, check_mode=False).read_file(r"C:\x\worker.toml")
    (sent,) = action.sent
    return {"stop": "Stop", "continue": "Continue", "silently_continue": "SilentlyContinue"}[sent.get("error_action", "continue")]


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_no_operation_script_has_a_pitfall(operation):
    findings = check(script_text(operation), error_action=_error_action_sent())
    assert [str(f) for f in findings] == []


_WINDOWS = Path(__file__).resolve().parents[1] / "windows"
# The suite and the CI scripts of its Ansible leg (scripts/ is checked as sent, with Stop, above).
WINDOWS_SUITE = sorted([*_WINDOWS.glob("*.ps*1"), *(_WINDOWS / "ci").glob("*.ps1")])


def test_there_is_a_windows_suite_to_check():
    assert {path.name for path in WINDOWS_SUITE} >= {"CmfContract.psm1", "Contract.Tests.ps1", "New-CmfStandInWorker.ps1"}


@pytest.mark.parametrize("path", WINDOWS_SUITE, ids=lambda p: p.name)
def test_the_windows_suite_has_no_pitfall(path):
    """The suite runs on Windows PowerShell 5.1 too: its own code is held to the same rules. It starts
    with the shell's default $ErrorActionPreference (Continue); the harness sets Stop itself."""
    assert [str(f) for f in check(path.read_text(encoding="utf-8"))] == []
