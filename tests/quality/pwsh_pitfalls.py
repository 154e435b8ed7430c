# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Windows PowerShell 5.1 pitfalls that no test here can catch by running code, found statically.

The check walks the tree-sitter parse of a script; plain regular expressions are used only where the
tree cannot say it: inside the C# source given to Add-Type, and for a `2>$null` redirection, which
the grammar keeps as a bare token. Every rule is a heuristic that errs on the quiet side: it flags
the shapes that broke real scripts, not every shape that could.

    PS001  a bare $null as a .NET method argument (but where the parameter is known to be an
           object: a table of such methods, and the signatures of the script's own Add-Type C#)
    PS002  a native command (`& ...`, a path, a .exe, a bare word that is no cmdlet, alias or
           function) with stderr redirected while $ErrorActionPreference is Stop: set in its own
           scope before it, else in the enclosing one, else the value the script starts with
    PS003  a list function's call used as one value (assigned, a hashtable value, an argument,
           indexed) outside @(...). A list function is a script function whose own output is
           `@(...)`, a `[T[]]` cast, `a, b`, `... | Select-Object -First/-Last n` (n other than 1),
           another list function's output, or an output from inside a loop
    PS004  a SHA/MD5 implementation that throws on a FIPS host
    PS005  C# in Add-Type (-TypeDefinition, -MemberDefinition, or positional; a literal or a
           variable set to one) that the C# 5 compiler of Windows PowerShell 5.1 refuses;
           `#if` is not understood, and `out int x` at a call is not told from a declaration
    PS006  a date or time formatted with a literal custom format and the current culture:
           `.ToString('yyyyMMdd')` with no format provider, `Get-Date -Format '...'`, and
           `'{0:yyyyMMdd}' -f ...` (the format operator uses the current culture)
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass

import tree_sitter_powershell
from tree_sitter import Language, Node, Parser

_PARSER = Parser(Language(tree_sitter_powershell.language()))


@dataclass(frozen=True)
class Rule:
    id: str
    why: str
    fix: str


RULES = {
    rule.id: rule
    for rule in (
        Rule(
            "PS001",
            'PowerShell passes $null to a .NET string parameter as "" (PowerShell issues 11515, 4616)',
            "pass [NullString]::Value where .NET must see a real null",
        ),
        Rule(
            "PS002",
            "on Windows PowerShell 5.1 a redirected stderr line of a native command under $ErrorActionPreference = 'Stop' "
            "is a terminating error (fixed only in PowerShell 7.2)",
            "set $ErrorActionPreference = 'Continue' in the function or scriptblock that runs it, "
            "or run it through System.Diagnostics.Process with redirected streams",
        ),
        Rule(
            "PS003",
            "PowerShell unrolls a function's list output: one element comes back as a scalar, none as $null",
            "wrap the call in @(...) where its result is used",
        ),
        Rule(
            "PS004",
            "the Managed hash classes (what SHA256/384/512.Create() give on .NET Framework) and MD5 throw on a host with the FIPS policy on",
            "use [Security.Cryptography.SHA256CryptoServiceProvider]::new() (or SHA1/SHA384/SHA512CryptoServiceProvider)",
        ),
        Rule(
            "PS005",
            "Add-Type on Windows PowerShell 5.1 compiles with the .NET Framework's C# 5 compiler",
            "write the C# 5 form",
        ),
        Rule(
            "PS006",
            "a custom date format follows the current culture: its calendar (yyyy is 2568 on a Thai host, th-TH) "
            "and its date and time separators ('/' and ':')",
            "use $date.ToString(format, [Globalization.CultureInfo]::InvariantCulture)",
        ),
    )
}


@dataclass(frozen=True)
class Finding:
    rule: str
    line: int  # 1-based, in the source given to check()
    column: int  # 1-based, in characters
    message: str

    def __str__(self) -> str:
        rule = RULES[self.rule]
        return f"line {self.line}, column {self.column}: {self.rule} {self.message}: {rule.why}; {rule.fix}"


def check(source: str, error_action: str = "Continue") -> list[Finding]:
    """The pitfalls in ``source``; ``error_action`` is the $ErrorActionPreference the script starts
    with (win_powershell's ``error_action`` sets it before the script runs)."""
    return _Script(source, error_action).findings()


# ---------------------------------------------------------------------------------------------
# The syntax tree

# Nodes that wrap a single meaningful child: an expression that is "just" a variable is reached
# through a dozen of them.
_WRAPPERS = frozenset(
    {
        "pipeline",
        "pipeline_chain",
        "logical_expression",
        "bitwise_expression",
        "comparison_expression",
        "additive_expression",
        "multiplicative_expression",
        "format_expression",
        "range_expression",
        "array_literal_expression",
        "unary_expression",
        "argument_expression",
        "logical_argument_expression",
        "bitwise_argument_expression",
        "comparison_argument_expression",
        "additive_argument_expression",
        "multiplicative_argument_expression",
        "format_argument_expression",
        "range_argument_expression",
        "command_name_expr",
        "path_command_name",
        "parenthesized_expression",
    }
)
# Nodes whose body runs as a scope of its own.
_SCOPES = frozenset({"function_statement", "script_block_expression"})
# What lies between a function's body and its statements (not an expression).
_STATEMENT_STRUCTURE = frozenset(
    {
        "script_block_body",
        "statement_list",
        "statement_block",
        "if_statement",
        "elseif_clauses",
        "elseif_clause",
        "else_clause",
        "try_statement",
        "catch_clauses",
        "catch_clause",
        "finally_clause",
        "trap_statement",
        "switch_statement",
        "switch_body",
        "switch_clauses",
        "switch_clause",
        "foreach_statement",
        "for_statement",
        "while_statement",
        "do_statement",
        "labeled_statement",
        "named_block",
        "named_block_list",
    }
)
# Statements that output nothing.
_NO_OUTPUT = frozenset(
    {
        "assignment_expression",
        "post_increment_expression",
        "post_decrement_expression",
        "pre_increment_expression",
        "pre_decrement_expression",
    }
)
# `> $null`, `1> $null`, `*> $null` at the end of a statement (the grammar keeps `1>` as a bare token).
_TO_NULL = re.compile(r"(?:^|\s)[1*]?>\s*\$null\s*$", re.IGNORECASE)
_LOOPS = frozenset({"foreach_statement", "for_statement", "while_statement", "do_statement"})


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _unwrap(node: Node) -> Node:
    while node.type in _WRAPPERS:
        named = [child for child in node.named_children if child.type not in ("command_argument_sep", "comment")]
        if len(named) != 1:
            break
        node = named[0]
    return node


def _walk(node: Node, into_scopes: bool = True) -> Iterator[Node]:
    yield node
    for child in node.children:
        if not into_scopes and child.type in _SCOPES:
            continue
        yield from _walk(child, into_scopes)


def _scope_of(node: Node) -> Node:
    parent = node.parent
    while parent is not None and parent.type not in _SCOPES:
        parent = parent.parent
    return parent if parent is not None else _root(node)


def _root(node: Node) -> Node:
    while node.parent is not None:
        node = node.parent
    return node


def _is_binary(node: Node) -> bool:
    """An operator expression with two operands (the grammar names every level *_expression)."""
    return node.type.endswith("_expression") and node.type in _WRAPPERS and len(node.named_children) > 1


_ARRAY_TYPE = re.compile(r"\[\s*\]\s*\]$|^\[(?:System\.)?(?:Collections\.(?:Generic\.)?)?(?:ArrayList|List\[.*\])\]$", re.IGNORECASE)
# Cmdlets (and their aliases) that pass on a stream of items, as many as they get or fewer.
_ITEM_FILTERS = _words("sort-object sort where-object where ? foreach-object foreach % select-object select")
_ERROR_ACTION_PREFERENCE = re.compile(r"^\$(?:(?P<scope>local|script|global|private):)?ErrorActionPreference$", re.IGNORECASE)
_STDERR_REDIRECTION = re.compile(r"^[2*]>")
_NATIVE_EXTENSION = re.compile(r"\.(?:exe|com|cmd|bat)$", re.IGNORECASE)
# Built-in aliases of Windows PowerShell 5.1 that a script may use bare (a bare word that is no
# alias, no Verb-Noun cmdlet and no function of the script is a native program, e.g. `cmd`).
_ALIASES = _words(
    "% ? ac cat cd chdir clc clear cls clv compare copy cp cpi del diff dir echo erase fc fl foreach ft fw gal gc gci gcm "
    "gdr gi gl gm gp gps group gsv gu gv gwmi h history icm iex ii ipmo irm iwr kill ls man md measure mi mount move mv ni "
    "popd ps pushd pwd r rd ren ri rm rmdir rni rnp rp rv rvpa sajb sal saps sasv sc select set si sl sleep sls sort sp "
    "spps spsv start sv tee type where write"
)


# ---------------------------------------------------------------------------------------------
# C# 5: what the compiler of Windows PowerShell 5.1's Add-Type refuses

_CS_TOKEN = re.compile(r"(?P<word>@?[A-Za-z_]\w*)|(?P<number>\d[\w.]*)|(?P<punct>=>|\?\?=|\?\?|\?\.(?!\d)|\?\[|::|&&|\|\||[-+*/%<>=!]=|\+\+|--|\S)")
_CS_KEYWORDS = _words(
    "abstract as base break case catch checked class const continue default delegate do else enum event explicit "
    "extern finally fixed for foreach goto if implicit in interface internal is lock namespace new operator out "
    "override params private protected public readonly ref return sealed sizeof stackalloc static struct switch "
    "this throw try typeof unchecked unsafe using virtual volatile while async await yield var when nameof"
)
_CS_PREDEFINED_TYPES = _words("bool byte char decimal double float int long object sbyte short string uint ulong ushort void dynamic")
# Words before a `(` that make it a call, a declaration's parameter list or a statement's header.
_CS_CALL_WORDS = _words(
    "base this typeof sizeof default checked unchecked delegate if while for foreach using lock switch catch fixed "
    "nameof"
)
_CS_MODIFIERS = _words(
    "public private protected internal static readonly const virtual override abstract sealed extern unsafe "
    "volatile new async partial"
)


_CS_STRING_TYPES = _words("string String System.String")
# A method declaration: `Name(parameters)` followed by its body, `=>` or `;` (extern, interface).
_CS_DECLARATION = re.compile(r"\b(?P<name>[A-Za-z_]\w*)\s*\((?P<parameters>[^()]*)\)\s*(?:\{|=>|;)")


def _split_top_level(text: str) -> list[str]:
    """``text`` split at the commas outside <> and [] (`Dictionary<string, int> d, int[,] a`)."""
    parts, depth, start = [], 0, 0
    for k, char in enumerate(text):
        if char in "<[":
            depth += 1
        elif char in ">]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:k])
            start = k + 1
    parts.append(text[start:])
    return parts


@dataclass(frozen=True)
class _Token:
    text: str
    start: int


def _mask_csharp(code: str) -> tuple[str, list[tuple[int, str]]]:
    """``code`` with comments and the contents of string and char literals blanked (offsets kept),
    and the C# 6+ string forms found on the way (interpolated strings)."""
    out = list(code)
    found: list[tuple[int, str]] = []
    i, n = 0, len(code)

    def blank(start: int, end: int) -> None:
        for k in range(start, min(end, n)):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        two = code[i : i + 2]
        if two == "//":
            end = code.find("\n", i)
            end = n if end < 0 else end
            blank(i, end)
            i = end
        elif two == "/*":
            end = code.find("*/", i + 2)
            end = n if end < 0 else end + 2
            blank(i, end)
            i = end
        elif code[i] in "\"'" or two in ('@"', '$"') or code[i : i + 3] in ('$@"', '@$"'):
            prefix_end = i
            while code[prefix_end] in "@$":
                prefix_end += 1
            prefix = code[i:prefix_end]
            if "$" in prefix:
                found.append((i, 'interpolated string $"..." (C# 6)'))
            quote = code[prefix_end]
            k = prefix_end + 1
            verbatim = "@" in prefix
            while k < n:
                if verbatim and code[k] == '"' and code[k + 1 : k + 2] == '"':
                    k += 2
                    continue
                if not verbatim and code[k] == "\\":
                    k += 2
                    continue
                if code[k] == quote or (not verbatim and code[k] == "\n"):
                    break
                k += 1
            blank(prefix_end + 1, k)
            i = k + 1
        else:
            i += 1
    return "".join(out), found


def _matching(tokens: list[_Token], index: int, opening: str, closing: str) -> int:
    """The index of the bracket that closes tokens[index] (or -1)."""
    depth = 0
    for k in range(index, len(tokens)):
        if tokens[k].text == opening:
            depth += 1
        elif tokens[k].text == closing:
            depth -= 1
            if depth == 0:
                return k
    return -1


def _matching_back(tokens: list[_Token], index: int, opening: str, closing: str) -> int:
    depth = 0
    for k in range(index, -1, -1):
        if tokens[k].text == closing:
            depth += 1
        elif tokens[k].text == opening:
            depth -= 1
            if depth == 0:
                return k
    return -1


def _is_name(token: _Token | None) -> bool:
    return token is not None and bool(re.match(r"@?[A-Za-z_]", token.text)) and token.text not in _CS_KEYWORDS


def _is_type_end(token: _Token | None) -> bool:
    """The token could end a type in a declaration (`int`, `Foo`, `List<T>`, `int[]`, `int?`)."""
    if token is None:
        return False
    return token.text in (">", "]", "?") or _is_name(token) or token.text in _CS_PREDEFINED_TYPES


def csharp5_violations(code: str, member_definition: bool = False) -> list[tuple[int, str]]:
    """(offset in ``code``, what) for each construct of ``code`` beyond C# 5.

    ``member_definition``: the code is Add-Type -MemberDefinition, members that Add-Type wraps in a class.
    """
    masked, found = _mask_csharp(code)
    tokens = [_Token(m.group(), m.start()) for m in _CS_TOKEN.finditer(masked)]

    # `out _` is a discard unless `_` is a variable of the code (`IntPtr _ = IntPtr.Zero;`).
    underscore_declared = bool(re.search(r"\b(?!out\b)[A-Za-z_][\w.]*[>\]?]?\s+_\s*[=;,)]", masked))

    def at(k: int) -> _Token | None:
        return tokens[k] if 0 <= k < len(tokens) else None

    # Which `{` opens a type (class, struct, interface, namespace: members inside) and which a body.
    stack = ["type" if member_definition else "namespace"]
    context_at: list[str] = []
    for k, token in enumerate(tokens):
        context_at.append(stack[-1])
        if token.text == "{":
            header = []
            j = k - 1
            while j >= 0 and tokens[j].text not in (";", "{", "}"):
                header.append(tokens[j].text)
                j -= 1
            if stack[-1] in ("namespace", "type") and {"class", "struct", "interface", "namespace"} & set(header):
                kind = "type"
            elif stack[-1] in ("namespace", "type") and "enum" in header:
                kind = "enum"
            elif stack[-1] == "type" and header and header[0] == "=":
                kind = "body"  # a field initializer `= { ... }`
            elif stack[-1] == "type":
                kind = "member"  # a method, constructor, property or event body
            else:
                kind = "body"
            stack.append(kind)
        elif token.text == "}" and len(stack) > 1:
            stack.pop()

    for k, token in enumerate(tokens):
        text = token.text
        context = context_at[k]
        prev, nxt = at(k - 1), at(k + 1)
        if text == "?.":
            found.append((token.start, "null-conditional ?. (C# 6)"))
        elif text == "?[" and not (nxt and nxt.text in ("]", ",")) and not (at(k - 2) and at(k - 2).text == "new"):  # new int?[3]
            found.append((token.start, "null-conditional ?[ (C# 6)"))
        elif text == "??=":
            found.append((token.start, "??= (C# 8)"))
        elif text == "??" and nxt and nxt.text == "throw":
            found.append((token.start, "throw expression (C# 7)"))
        elif text == "nameof" and nxt and nxt.text == "(":
            found.append((token.start, "nameof() (C# 6)"))
        elif text == "out" and nxt and (nxt.text == "var" or (nxt.text == "_" and not underscore_declared)):
            found.append((token.start, f"out {nxt.text} (C# 7)"))
        elif text == "is" and nxt and nxt.text in ("var", "null", "not"):
            found.append((token.start, f"is {nxt.text} pattern (C# 7+)"))
        elif text == "is" and _is_type_end(nxt) and _is_name(at(k + 2)) and at(k + 2).text not in ("and", "or"):
            found.append((token.start, f"is {nxt.text} {at(k + 2).text}: a declaration pattern (C# 7)"))
        elif text == "default" and not (nxt and nxt.text in ("(", ":")):
            found.append((token.start, "default literal without a type (C# 7.1)"))
        elif text == "using" and nxt and nxt.text == "static":
            found.append((token.start, "using static (C# 6)"))
        elif text == "using" and nxt and nxt.text == "var":
            found.append((token.start, "using declaration (C# 8)"))
        elif text == "when" and prev and prev.text == ")" and _matching_back(tokens, k - 1, "(", ")") > 0:
            opening = _matching_back(tokens, k - 1, "(", ")")
            if at(opening - 1) and at(opening - 1).text == "catch":
                found.append((token.start, "exception filter catch (...) when (C# 6)"))
        elif text == "switch" and nxt and nxt.text == "{":
            found.append((token.start, "switch expression (C# 8)"))
        elif text == "get" and prev and prev.text == "{" and nxt and nxt.text == ";" and at(k + 2) and at(k + 2).text == "}":
            found.append((token.start, "getter-only auto-property { get; } (C# 6)"))
        elif text == "}" and nxt and nxt.text == "=" and context == "member" and _is_auto_property(tokens, k):
            found.append((token.start, "auto-property initializer (C# 6)"))
        elif text == "=>" and context in ("type", "namespace") and _is_expression_bodied_member(tokens, k):
            found.append((token.start, "expression-bodied member => (C# 6)"))
        elif text == "(" and _is_tuple(tokens, k):
            found.append((token.start, "tuple (C# 7)"))
        elif text == "(" and context in ("member", "body") and _is_local_function(tokens, k):
            found.append((tokens[k - 1].start, f"local function {tokens[k - 1].text} (C# 7)"))
        elif re.match(r"0[bB][01]", text):
            found.append((token.start, "binary literal (C# 7)"))
        elif re.match(r"\d", text) and "_" in text:
            found.append((token.start, "digit separator (C# 7)"))
    return sorted(found)


def _is_auto_property(tokens: list[_Token], index: int) -> bool:
    """tokens[index] is the `}` of `{ get; set; }` (so `= value` after it is an initializer)."""
    opening = _matching_back(tokens, index, "{", "}")
    inside = {t.text for t in tokens[opening + 1 : index]}
    return opening > 0 and inside <= {"get", "set", ";", *_CS_MODIFIERS}


def _is_expression_bodied_member(tokens: list[_Token], index: int) -> bool:
    """tokens[index] is a `=>` at member level right after a signature `)`, a property name or `]`
    of an indexer; a lambda there would follow `=` or `(` or `,`."""
    prev = tokens[index - 1] if index > 0 else None
    if prev is None:
        return False
    if prev.text == ")":
        opening = _matching_back(tokens, index - 1, "(", ")")
        before = tokens[opening - 1] if opening > 0 else None
        return before is not None and (before.text == ">" or _is_name(before))
    if prev.text == "]":
        opening = _matching_back(tokens, index - 1, "[", "]")
        return opening > 0 and tokens[opening - 1].text == "this"
    before = tokens[index - 2] if index > 1 else None
    return _is_name(prev) and _is_type_end(before)


def _is_tuple(tokens: list[_Token], index: int) -> bool:
    """tokens[index] is a `(` that opens a tuple type or literal: C# 5 has no parenthesized list with
    a comma but a call's or a declaration's arguments, a lambda's parameters and a `for` header."""
    closing = _matching(tokens, index, "(", ")")
    if closing < 0:
        return False
    depth, comma = 0, False
    for token in tokens[index + 1 : closing]:
        if token.text in ("(", "[", "{", "<"):
            depth += 1
        elif token.text in (")", "]", "}", ">"):
            depth -= 1
        elif token.text == ";":
            return False
        elif token.text == "," and depth == 0:
            comma = True
    if not comma:
        return False
    after = tokens[closing + 1] if closing + 1 < len(tokens) else None
    if after is not None and after.text == "=>":
        return False  # a lambda's parameters
    before = tokens[index - 1] if index > 0 else None
    if before is None:
        return True
    if before.text in _CS_CALL_WORDS or before.text in (">", "]", ")"):
        return False
    if before.text in ("var", "return", "in", "yield", "await", "throw", "case", "else", "out", "ref", "is", "as", *_CS_MODIFIERS):
        return True
    if index > 1 and tokens[index - 2].text == "operator":
        return False  # operator +(A a, B b)
    return not (_is_name(before) or before.text in _CS_PREDEFINED_TYPES)


def _is_local_function(tokens: list[_Token], index: int) -> bool:
    """tokens[index] is the `(` of `Type Name(...) {` or `=> ` inside a method body."""
    name = tokens[index - 1] if index > 0 else None
    type_end = tokens[index - 2] if index > 1 else None
    if not _is_name(name) or not _is_type_end(type_end):
        return False
    if type_end.text == "?":
        return False  # a conditional `c ? F(x)`, not `int? F(x)`: too rare in a body to tell apart
    closing = _matching(tokens, index, "(", ")")
    after = tokens[closing + 1] if 0 < closing < len(tokens) - 1 else None
    return after is not None and after.text in ("{", "=>")


# ---------------------------------------------------------------------------------------------
# The script


class _Script:
    def __init__(self, source: str, error_action: str) -> None:
        self.data = source.encode("utf-8")
        self.tree = _PARSER.parse(self.data)
        self.root = self.tree.root_node
        self.error_action = error_action
        self.line_starts = [0] + [m.end() for m in re.finditer(rb"\n", self.data)]
        self.functions: dict[str, Node] = {}
        for node in _walk(self.root):
            if node.type == "function_statement":
                name = next((c for c in node.children if c.type == "function_name"), None)
                if name is not None:
                    self.functions[self.text(name).lower()] = node
        self.scriptblock_variables = {
            self.text(_unwrap(left)).lower() for left, value in self._assignments() if _unwrap(value).type == "script_block_expression"
        }
        self.list_functions = self._list_functions()

    # -- helpers

    def text(self, node: Node) -> str:
        return self.data[node.start_byte : node.end_byte].decode("utf-8")

    def position(self, byte: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.line_starts, byte) - 1
        column = len(self.data[self.line_starts[line] : byte].decode("utf-8", errors="replace")) + 1
        return line + 1, column

    def finding(self, rule: str, node_or_byte: Node | int, message: str) -> Finding:
        byte = node_or_byte if isinstance(node_or_byte, int) else node_or_byte.start_byte
        line, column = self.position(byte)
        return Finding(rule, line, column, message)

    def _assignments(self) -> Iterator[tuple[Node, Node]]:
        for node in _walk(self.root):
            if node.type == "assignment_expression":
                left = next((c for c in node.children if c.type == "left_assignment_expression"), None)
                value = node.child_by_field_name("value")
                operator = next((c for c in node.children if c.type == "assignement_operator"), None)
                if left is not None and value is not None and operator is not None and self.text(operator) == "=":
                    yield left, value

    def command_name(self, command: Node) -> str | None:
        """The bare name of a command invoked without `&` (None for `& ...`)."""
        if any(c.type == "command_invokation_operator" for c in command.children):
            return None
        name = command.child_by_field_name("command_name")
        return self.text(name) if name is not None else None

    def command_arguments(self, command: Node) -> list[Node]:
        elements = command.child_by_field_name("command_elements")
        if elements is None:
            return []
        return [c for c in elements.named_children if c.type not in ("command_argument_sep", "comment")]

    def findings(self) -> list[Finding]:
        found = [
            *self._null_arguments(),
            *self._native_stderr(),
            *self._list_calls(),
            *self._fips_hashes(),
            *self._add_type_csharp(),
            *self._culture_dates(),
        ]
        return sorted(set(found), key=lambda f: (f.line, f.column, f.rule))

    # -- PS001

    # .NET methods whose parameter there is `object` (or null means the same as ""), where a bare
    # $null is right: None for every position.
    _OBJECT_PARAMETERS: dict[str, frozenset[int] | None] = {
        "getvalue": None,  # RegistryKey.GetValue(name, defaultValue), FieldInfo/PropertyInfo.GetValue(object)
        "getconstructor": None,  # GetConstructor(flags, Binder, Type[], ParameterModifier[])
        "parseexact": frozenset({2}),  # DateTime.ParseExact(text, format, IFormatProvider)
        "setvalue": None,  # FieldInfo/PropertyInfo.SetValue(object, object)
        "invoke": None,  # DirectoryEntry.Invoke(method, params object[]), MethodInfo.Invoke(object, object[])
        "invokemember": None,  # Type.InvokeMember(name, flags, binder, target, args)
        "equals": None,
        "referenceequals": None,
    }

    def _csharp_parameter_types(self) -> dict[str, list[list[str]]]:
        """The parameter types of each method the script's own Add-Type C# declares, by name."""
        methods: dict[str, list[list[str]]] = {}
        for literal, _where in self._add_type_sources():
            masked, _spans = _mask_csharp(self._string_content(literal)[0])
            for match in _CS_DECLARATION.finditer(masked):
                name, parameters = match.group("name"), match.group("parameters")
                if name in _CS_KEYWORDS:
                    continue
                types = []
                for parameter in filter(None, (p.strip() for p in _split_top_level(parameters))):
                    words = re.sub(r"\[[^\]]*\]\s*", "", parameter).split("=")[0].split()  # no attributes, no default
                    words = [w for w in words if w not in ("ref", "out", "in", "params", "this")]
                    types.append(" ".join(words[:-1]))
                methods.setdefault(name.lower(), []).append(types)
        return methods

    def _null_arguments(self) -> Iterator[Finding]:
        declared = self._csharp_parameter_types()
        for node in _walk(self.root):
            if node.type != "invokation_expression":
                continue
            member = next((c for c in node.children if c.type == "member_name"), None)
            arguments = next((c for c in node.children if c.type == "argument_list"), None)
            listed = arguments.child_by_field_name("argument_expression_list") if arguments is not None else None
            if member is None or listed is None:
                continue
            method = self.text(member)
            values = [_unwrap(c) for c in listed.named_children if c.type == "argument_expression"]
            count = len(values)
            for position, value in enumerate(values):
                if value.type != "variable" or self.text(value).lower() != "$null":
                    continue
                if method.lower() in declared:  # the script's own C#: its signature says
                    overloads = declared[method.lower()]
                    if not any(position < len(types) and types[position] in _CS_STRING_TYPES for types in overloads):
                        continue
                else:
                    exempt = self._OBJECT_PARAMETERS.get(method.lower(), frozenset())
                    if exempt is None or position in exempt:
                        continue
                    if method.startswith("Begin") and position >= count - 2:
                        continue  # the APM pattern's AsyncCallback and object state
                yield self.finding("PS001", value, f"$null as argument {position + 1} of {method}()")

    # -- PS002

    def _is_native(self, command: Node) -> bool:
        name_node = command.child_by_field_name("command_name")
        if name_node is None:
            return False
        if self.command_name(command) is None:  # & target
            target = _unwrap(name_node)
            if target.type == "script_block_expression":
                return False
            if target.type == "variable":
                return self.text(target).lower() not in self.scriptblock_variables
            if target.type == "string_literal":
                return self._native_name(self.text(target).strip("'\""))
            return True
        return self._native_name(self.text(name_node))

    def _native_name(self, name: str) -> bool:
        lowered = name.lower()
        if "\\" in name or "/" in name or _NATIVE_EXTENSION.search(name):
            return True
        return "-" not in name and lowered not in self.functions and lowered not in _ALIASES

    def _error_action_at(self, node: Node) -> str:
        """$ErrorActionPreference where ``node`` runs: the last assignment before it in its own scope,
        else in the enclosing scope before that scope (or the first after it: a function runs when
        it is called, usually after the script set its preferences), else the starting value."""
        assignments: list[tuple[Node, int, str]] = []
        for left, value in self._assignments():
            match = _ERROR_ACTION_PREFERENCE.match(self.text(_unwrap(left)))
            if not match:
                continue
            scope = self.root if match.group("scope") in ("script", "global") else _scope_of(left) or self.root
            preference = self._preference_value(value)
            if preference is not None:
                assignments.append((scope, left.start_byte, preference))
        inner = node
        while True:
            scope = _scope_of(inner) or self.root
            mine = [(byte, value) for s, byte, value in assignments if s == scope]
            before = [value for byte, value in mine if byte < inner.start_byte]
            if before:
                return before[-1]
            if inner is not node and inner.type in _SCOPES and mine:
                return mine[0][1]
            if scope == self.root or scope.type not in _SCOPES:
                return self.error_action
            inner = scope

    def _preference_value(self, value: Node) -> str | None:
        value = _unwrap(value)
        if value.type == "string_literal":
            return self.text(value).strip("'\"")
        if value.type == "member_access":  # [ActionPreference]::Stop
            member = next((c for c in value.children if c.type == "member_name"), None)
            return self.text(member) if member is not None else None
        return None

    def _native_stderr(self) -> Iterator[Finding]:
        for node in _walk(self.root):
            if node.type != "command" or not self._is_native(node):
                continue
            redirection = next(
                (a for a in self.command_arguments(node) if a.type in ("redirection", "generic_token") and _STDERR_REDIRECTION.match(self.text(a))),
                None,
            )
            if redirection is None:
                continue
            if self._error_action_at(node).lower() == "stop":
                name = self.text(node.child_by_field_name("command_name"))
                yield self.finding("PS002", node, f"{name} ... {self.text(redirection)} under $ErrorActionPreference = 'Stop'")

    # -- PS003

    def _list_functions(self) -> dict[str, str]:
        """Functions of the script that output a list, with the reason. The heuristic: a function
        whose own output (a `return` value or a statement that is neither assigned nor a method call)
        is an array: `@(...)`, a `[T[]]` cast, `a, b`, a pipeline that ends in
        `Select-Object -First/-Last` with a count other than 1, or the call of another such function;
        or that emits from inside a loop (foreach, for, while, do). `return ,$list` is no list here:
        it hands the list over as one object, so assigning it keeps it whole: the fix on the producing side."""
        found: dict[str, str] = {}
        changed = True
        while changed:
            changed = False
            for name, function in self.functions.items():
                if name in found:
                    continue
                reason = self._list_reason(function, found)
                if reason:
                    found[name] = reason
                    changed = True
        return found

    def _list_reason(self, function: Node, known: dict[str, str]) -> str | None:
        body = next((c for c in function.children if c.type == "script_block"), None)
        if body is None:
            return None
        for node in _walk(body, into_scopes=False):
            if not self._is_statement_of(node, body):
                continue
            if node.type == "flow_control_statement" and node.children and node.children[0].type == "return":
                value = next((c for c in node.children if c.type == "pipeline"), None)
                reason = value is not None and self._list_value(value, known)
                if reason:
                    return f"returns {reason}"
            elif node.type == "pipeline" and node.parent is not None and node.parent.type == "statement_list":
                if not self._is_output_statement(node):
                    continue
                reason = self._list_value(node, known)
                if reason:
                    return f"outputs {reason}"
                loop = self._enclosing_loop(node, body)
                if loop is not None and self._emits(node) and not self._leaves_after(node):
                    return f"outputs from inside a {loop.type.removesuffix('_statement')} loop"
        return None

    def _is_statement_of(self, node: Node, body: Node) -> bool:
        """``node`` is a statement of ``body`` itself, maybe inside if/try/loops/switch, but not one
        inside an expression (`@(...)`, `$(...)`, a hashtable, a command's argument)."""
        if node.type not in ("pipeline", "flow_control_statement"):
            return False
        parent = node.parent
        while parent is not None and parent != body:
            if parent.type not in _STATEMENT_STRUCTURE:
                return False
            parent = parent.parent
        return parent == body

    def _leaves_after(self, statement: Node) -> bool:
        """The statement after ``statement`` is `break` or `return`: it outputs one value, once."""
        following = statement.next_named_sibling
        while following is not None and following.type == "comment":
            following = following.next_named_sibling
        return following is not None and following.type == "flow_control_statement" and following.children[0].type in ("break", "return")

    def _enclosing_loop(self, node: Node, body: Node) -> Node | None:
        parent = node.parent
        while parent is not None and parent != body:
            if parent.type in _LOOPS:
                return parent
            parent = parent.parent
        return None

    def _parts(self, pipeline: Node) -> list[Node]:
        """The elements of a pipeline (`a | b | c`), without its redirections."""
        named = [c for c in pipeline.named_children if c.type != "comment"]
        chain = named[0] if len(named) == 1 and named[0].type == "pipeline_chain" else pipeline
        return [c for c in chain.named_children if c.type not in ("comment", "redirections")]

    def _is_output_statement(self, pipeline: Node) -> bool:
        """A statement whose value goes to the output: not an assignment, an increment, [void],
        `| Out-Null` or `> $null`."""
        core = _unwrap(pipeline)
        if core.type == "expression_with_unary_operator":
            core = core.children[0]
        if core.type in _NO_OUTPUT:
            return False
        if core.type == "cast_expression" and self.text(core).lower().startswith("[void]"):
            return False
        if _TO_NULL.search(self.text(pipeline)):
            return False
        last = _unwrap(self._parts(pipeline)[-1])
        return not (last.type == "command" and (self.command_name(last) or "").lower() == "out-null")

    def _emits(self, pipeline: Node) -> bool:
        """An output statement in a loop that surely outputs something: a value that is no method
        call (those are often void), a pipeline that starts from a value, or Write-Output."""
        parts = self._parts(pipeline)
        first = _unwrap(parts[0])
        if first.type == "command":
            return (self.command_name(first) or "").lower() == "write-output"
        return len(parts) > 1 or first.type != "invokation_expression"

    def _list_value(self, pipeline: Node, known: dict[str, str]) -> str | None:
        parts = self._parts(pipeline)
        if len(parts) > 1:
            first, last = _unwrap(parts[0]), _unwrap(parts[-1])
            last_name = (self.command_name(last) or "").lower() if last.type == "command" else ""
            count = self._select_count(last) if last_name in ("select-object", "select") else None
            if count is not None:
                return f"Select-Object -First/-Last {count}" if count != "1" else None
            first_name = (self.command_name(first) or "").lower() if first.type == "command" else ""
            if first_name in known and last_name in _ITEM_FILTERS:
                return f"the list of {self.text(first.child_by_field_name('command_name'))} through {last_name}"
            return None
        value = _unwrap(pipeline)
        if value.type == "array_expression":
            return "@(...)"
        if value.type == "array_literal_expression" and any(c.type == "," for c in value.children):
            return "a comma list"
        if value.type == "expression_with_unary_operator":
            first = value.children[0]
            if first.type == ",":
                return None  # `,$list` hands the list over whole: assigning it keeps it
            if first.type == "cast_expression":
                value = first
        if value.type == "cast_expression":
            cast = next((c for c in value.children if c.type == "type_literal"), None)
            if cast is not None and _ARRAY_TYPE.search(self.text(cast)):
                return f"a {self.text(cast)} cast"
            inner = next((c for c in value.children if c.type == "unary_expression"), None)
            if inner is not None:
                inner = _unwrap(inner)
                if inner.type == "parenthesized_expression":
                    inner_pipeline = next((c for c in inner.children if c.type == "pipeline"), None)
                    if inner_pipeline is not None:
                        return self._list_value(inner_pipeline, known)
        if value.type == "command":
            name = (self.command_name(value) or "").lower()
            if name in known:
                return f"the list of {self.text(value.child_by_field_name('command_name'))}"
        return None

    def _select_count(self, command: Node) -> str | None:
        arguments = self.command_arguments(command)
        for k, argument in enumerate(arguments):
            if argument.type == "command_parameter" and self.text(argument).lower().rstrip(":") in ("-first", "-last"):
                return self.text(arguments[k + 1]) if k + 1 < len(arguments) else "?"
        return None

    def _list_calls(self) -> Iterator[Finding]:
        for node in _walk(self.root):
            if node.type != "command":
                continue
            name = (self.command_name(node) or "").lower()
            if name not in self.list_functions:
                continue
            use = self._unwrapped_use(node)
            if use:
                shown = self.text(node.child_by_field_name("command_name"))
                yield self.finding("PS003", node, f"{shown} {self.list_functions[name]}; its result is {use} without @(...)")

    def _unwrapped_use(self, command: Node) -> str | None:
        """How the value of ``command`` is used, when that is as a single value not wrapped in @()."""
        current = command
        while current.parent is not None:
            parent = current.parent
            kind = parent.type
            if kind in ("array_expression", "expandable_string_literal", "while_condition", "switch_condition"):
                return None
            if kind in ("if_statement", "elseif_clause", "foreach_statement") and current.type == "pipeline":
                return None  # a condition, or what foreach walks through: a scalar works as well
            if kind == "flow_control_statement":
                return None  # return: the enclosing function passes it on (and counts as a list function)
            if kind in ("script_block", "program"):
                return None  # output of a function or of the script
            if kind == "hash_entry":
                return "a hashtable value"
            if kind == "assignment_expression" and current == parent.child_by_field_name("value"):
                left = next((c for c in parent.children if c.type == "left_assignment_expression"), None)
                if left is not None and "," in self.text(left):
                    return None  # `$first, $rest = ...` takes the items apart
                return "assigned"
            if kind == "command_elements":
                return "passed as a command argument"
            if kind == "argument_expression_list":
                return "passed as a method argument"
            if kind in ("member_access", "element_access", "invokation_expression") and current == parent.named_children[0]:
                return f"used by {kind.replace('_', ' ')}"
            if _is_binary(parent):
                return None  # an operator's operand (-join, -eq, -contains...): a scalar works as well
            if kind == "expression_with_unary_operator" and parent.children[0].type not in ("cast_expression", ","):
                return None  # -not, !, -split...: the result is no longer the function's list
            if kind == "cast_expression" and self.text(parent).lower().startswith("[void]"):
                return None
            current = parent
        return None

    # -- PS004

    # What .NET Framework's CryptoConfig gives for these names: SHA256/384/512 are the Managed classes
    # and MD5 is MD5CryptoServiceProvider, none FIPS-validated (SHA1 is SHA1CryptoServiceProvider).
    _FIPS_TYPE = re.compile(r"(?:^|\.)(?:SHA1|SHA256|SHA384|SHA512|RIPEMD160)Managed$", re.IGNORECASE)
    _FIPS_FACTORY = re.compile(r"(?:^|\.)(?:SHA256|SHA384|SHA512|MD5|HashAlgorithm)$", re.IGNORECASE)
    _FIPS_NAME = re.compile(r"^(?:System\.Security\.Cryptography\.)?(?:SHA-?(?:256|384|512)(?:Managed)?|MD5\w*)$", re.IGNORECASE)
    _FIPS_CSHARP_TYPE = re.compile(r"\b(?:SHA1|SHA256|SHA384|SHA512|RIPEMD160)Managed\b")
    _FIPS_CSHARP_FACTORY = re.compile(r"\b(?P<type>SHA256|SHA384|SHA512|MD5|HashAlgorithm)\s*\.\s*Create\s*\(")
    _CSHARP_STRING_ARGUMENT = re.compile(r'\s*(?:"(?P<name>[^"]*)"\s*)?\)')

    def _fips_factory(self, type_name: str, argument: str | None) -> bool:
        """``Type.Create(argument)`` gives an implementation that throws on a FIPS host; ``argument``
        is the algorithm name given, "" for none, None for one that is not a literal."""
        if argument is None:
            return False
        name = argument or type_name.rsplit(".", 1)[-1]
        return bool(self._FIPS_NAME.match(name))

    def _fips_hashes(self) -> Iterator[Finding]:
        for node in _walk(self.root):
            if node.type == "type_literal":
                spec = next((c for c in node.children if c.type == "type_spec"), None)
                if spec is not None and self._FIPS_TYPE.search(self.text(spec)):
                    yield self.finding("PS004", node, f"{self.text(node)}")
            elif node.type == "invokation_expression":
                target = node.named_children[0] if node.named_children else None
                member = next((c for c in node.children if c.type == "member_name"), None)
                if target is None or member is None or target.type != "type_literal" or self.text(member).lower() != "create":
                    continue
                spec = next((c for c in target.children if c.type == "type_spec"), None)
                if spec is None or not self._FIPS_FACTORY.search(self.text(spec)):
                    continue
                arguments = next((c for c in node.children if c.type == "argument_list"), None)
                listed = arguments.child_by_field_name("argument_expression_list") if arguments is not None else None
                argument: str | None = ""
                if listed is not None:
                    first = _unwrap(listed.named_children[0])
                    argument = self.text(first).strip("'\"") if first.type == "string_literal" else None
                if self._fips_factory(self.text(spec), argument):
                    yield self.finding("PS004", node, f"{self.text(node)}")
            elif node.type == "command" and (self.command_name(node) or "").lower() == "new-object":
                for argument in self.command_arguments(node):
                    if argument.type != "command_parameter" and self._FIPS_TYPE.search(self.text(argument).strip("'\"")):
                        yield self.finding("PS004", argument, f"New-Object {self.text(argument)}")

    def _fips_hashes_in_csharp(self, code: str) -> Iterator[tuple[int, str]]:
        masked, _spans = _mask_csharp(code)
        for match in self._FIPS_CSHARP_TYPE.finditer(masked):
            yield match.start(), match.group()
        for match in self._FIPS_CSHARP_FACTORY.finditer(masked):
            literal = self._CSHARP_STRING_ARGUMENT.match(code, match.end())  # the original: masking blanks strings
            if self._fips_factory(match.group("type"), (literal.group("name") or "") if literal else None):
                yield match.start(), f"{match.group('type')}.Create()"

    # -- PS006

    # A custom date and time format: only the letters and separators of one, with a field of two
    # letters at least (so 'X8', 'N0', 'o' or a single standard letter are not one).
    _DATE_FORMAT = re.compile(r"^(?=.*(?:yy|MM|dd|HH|hh|mm|ss))[yMdHhmsfFtzK:/.\-_ T]+$")
    _DATE_FIELD = re.compile(r"\{\d+(?:,-?\d+)?:(?P<format>[^{}]+)\}")

    def _literal(self, node: Node) -> str | None:
        core = _unwrap(node)
        return self.text(core)[1:-1] if core.type == "string_literal" else None

    def _culture_dates(self) -> Iterator[Finding]:
        for node in _walk(self.root):
            if node.type == "invokation_expression":
                member = next((c for c in node.children if c.type == "member_name"), None)
                arguments = next((c for c in node.children if c.type == "argument_list"), None)
                listed = arguments.child_by_field_name("argument_expression_list") if arguments is not None else None
                if member is None or listed is None or self.text(member).lower() != "tostring":
                    continue
                values = [c for c in listed.named_children if c.type == "argument_expression"]
                text = self._literal(values[0]) if len(values) == 1 else None
                if text is not None and self._DATE_FORMAT.match(text):
                    yield self.finding("PS006", node, f".ToString('{text}') without a format provider")
            elif node.type == "command" and (self.command_name(node) or "").lower() == "get-date":
                arguments = self.command_arguments(node)
                for k, argument in enumerate(arguments[:-1]):
                    if argument.type == "command_parameter" and self.text(argument).lower().rstrip(":") == "-format":
                        text = self._literal(arguments[k + 1])
                        if text is not None and self._DATE_FORMAT.match(text):
                            yield self.finding("PS006", node, f"Get-Date -Format '{text}'")
            elif node.type == "format_expression" and any(c.type == "format_operator" for c in node.children):
                text = self._literal(node.named_children[0])
                for field in self._DATE_FIELD.finditer(text or ""):
                    if self._DATE_FORMAT.match(field.group("format")):
                        yield self.finding("PS006", node, f"'{field.group()}' -f: the format operator uses the current culture")

    # -- PS005 (and PS004 in the C#)

    def _add_type_sources(self) -> Iterator[tuple[Node, bool]]:
        """(string literal, is -MemberDefinition) for each C# source given to Add-Type."""
        strings_of: dict[str, list[Node]] = {}
        for left, value in self._assignments():
            core = _unwrap(value)
            if core.type == "string_literal":
                strings_of.setdefault(self.text(_unwrap(left)).lower(), []).append(core)
        for node in _walk(self.root):
            if node.type != "command" or (self.command_name(node) or "").lower() != "add-type":
                continue
            arguments = self.command_arguments(node)
            bound: list[tuple[str, Node]] = []
            k = 0
            while k < len(arguments):
                argument = arguments[k]
                if argument.type == "command_parameter":
                    parameter = self.text(argument).lower().lstrip("-").rstrip(":")
                    if parameter in ("passthru", "ignorewarnings") or k + 1 >= len(arguments):
                        k += 1
                        continue
                    bound.append((parameter, arguments[k + 1]))
                    k += 2
                else:
                    bound.append(("", argument))  # the first positional parameter is -TypeDefinition
                    k += 1
            for parameter, argument in bound:
                member = len(parameter) >= 1 and "memberdefinition".startswith(parameter)
                typed = parameter == "" or "typedefinition".startswith(parameter)
                if not (member or typed):
                    continue
                core = _unwrap(argument)
                if core.type == "string_literal":
                    yield core, member
                elif core.type == "variable":
                    for literal in strings_of.get(self.text(core).lower(), []):
                        yield literal, member

    def _string_content(self, literal: Node) -> tuple[str, int]:
        """The characters of a string literal and the byte offset where they start."""
        raw = self.text(literal)
        if raw[:2] in ("@'", '@"'):
            first_newline = raw.find("\n")
            end = raw.rfind("\n")
            content = raw[first_newline + 1 : end].rstrip("\r")
            return content, literal.start_byte + len(raw[: first_newline + 1].encode("utf-8"))
        return raw[1:-1], literal.start_byte + 1

    def _add_type_csharp(self) -> Iterator[Finding]:
        for literal, member_definition in self._add_type_sources():
            code, start = self._string_content(literal)

            def byte_of(offset: int, code: str = code, start: int = start) -> int:
                return start + len(code[:offset].encode("utf-8"))

            for offset, what in csharp5_violations(code, member_definition):
                yield self.finding("PS005", byte_of(offset), what)
            for offset, what in self._fips_hashes_in_csharp(code):
                yield self.finding("PS004", byte_of(offset), f"{what} in Add-Type C#")
