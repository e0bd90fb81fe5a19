"""Reading the documentation the way tests/docs checks it: fenced shell blocks and their markers, the
commands inside them, commands in inline code, links, and heading anchors as GitHub renders them.

A block's marker is an HTML comment on the line right before its opening fence:

    <!-- run: moto -->                tests/docs runs the block in bash against the moto server
    <!-- not-run-here: <reason> -->   not run (the reason says what it needs); still checked statically

A block without a marker must hold only commands the tests check statically (``hfo``, ``hfo-site``,
``make``, ``kubectl kustomize``). Nothing here runs a command; it only reads text.
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from testsupport.tools import REPO_ROOT

AWSCLI_BIN = REPO_ROOT / ".venv-awscli" / "bin"  # `make awscli-venv`
AWSCLI_PYTHON = AWSCLI_BIN / "python"
VENV_BIN = REPO_ROOT / ".venv" / "bin"
MERMAID_DIR = REPO_ROOT / ".venv-mermaid"  # `make docs-mermaid`

# The variables docs/runbook.md#before-you-start sets from `terraform output`.
DOC_VARIABLES = (
    "AWS_DEFAULT_REGION",
    "HFO_TABLE_NAME",
    "HFO_INSTANCE_ID",
    "HMAC_SECRET",
    "DISCORD_SECRET",
    "TAILSCALE_SECRET",
    "TICK_FUNCTION",
    "HEARTBEAT_FUNCTION",
    "ALERT_TOPIC",
)

SHELL_LANGS = frozenset({"console", "sh", "bash", "shell"})
MARKER_KINDS = frozenset({"run", "not-run-here"})
# Programs whose every use the tests check without running it; an unmarked block may hold only these.
STATICALLY_CHECKED = frozenset({"hfo", "hfo-site", "make"})
# Shell words that open or close a compound command rather than name a program.
_RESERVED_LEADING = frozenset({"do", "then", "else", "!", "time"})
_RESERVED_ALONE = frozenset({"done", "fi", "esac", "{", "}", "elif"})
_COMPOUND_START = frozenset({"for", "while", "until", "case", "select", "if"})

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_MARKER = re.compile(r"^\s*<!--\s*(?P<kind>[\w-]+)\s*:\s*(?P<detail>.*?)\s*-->\s*$")
_INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_REDIRECT = re.compile(r"^(\d*)(>>|>|<|&>|>&|<&)(.*)$")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_VARIABLE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")
SUBSTITUTION = "__SUBST__"


class UnsupportedShell(ValueError):
    """Shell the reader does not model (a heredoc, an unbalanced quote); the test names the block."""


@dataclass(frozen=True)
class Marker:
    kind: str
    detail: str


@dataclass(frozen=True)
class Block:
    path: str  # relative to the repository root
    line: int  # line of the opening fence, 1-based
    lang: str
    text: str
    marker: Marker | None

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def is_shell(self) -> bool:
        return self.lang in SHELL_LANGS


@dataclass(frozen=True)
class Command:
    """One simple command: its words (quotes removed, nothing expanded), its leading assignments,
    and where it came from."""

    argv: tuple[str, ...]
    assignments: tuple[str, ...]
    source: str
    where: str
    nested: bool = False  # inside a command substitution

    @property
    def program(self) -> str:
        return self.argv[0] if self.argv else ""


@dataclass(frozen=True)
class Link:
    path: str
    line: int
    target: str
    anchor: str | None


@dataclass
class _Scan:
    """Quote state while walking shell text character by character."""

    single: bool = False
    double: bool = False
    escaped: bool = False
    history: list[str] = field(default_factory=list)

    @property
    def quoted(self) -> bool:
        return self.single or self.double

    def feed(self, ch: str) -> None:
        if self.escaped:
            self.escaped = False
        elif ch == "\\" and not self.single:
            self.escaped = True
        elif ch == "'" and not self.double:
            self.single = not self.single
        elif ch == '"' and not self.single:
            self.double = not self.double


def doc_paths() -> list[Path]:
    """README.md and every page of docs/."""
    return [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]


def rel(path: Path) -> str:
    return path.resolve().relative_to(REPO_ROOT).as_posix()


@functools.cache
def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _outside_fences(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of every line outside fenced blocks."""
    fence: str | None = None
    for n, line in enumerate(text.splitlines(), 1):
        m = _FENCE.match(line)
        if fence is None and m:
            fence = m["fence"]
            continue
        if fence is not None:
            if re.match(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}\s*$", line):
                fence = None
            continue
        yield n, line


def blocks(path: Path) -> list[Block]:
    lines = read(path).splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence = len(m["indent"]), m["fence"]
        info = m["info"].strip().split()
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not re.match(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[j]):
            line = lines[j]
            strip = min(indent, len(line) - len(line.lstrip(" ")))
            body.append(line[strip:])
            j += 1
        marker = None
        if i > 0 and (mm := _MARKER.match(lines[i - 1])):
            marker = Marker(mm["kind"], mm["detail"])
        out.append(Block(rel(path), i + 1, info[0] if info else "", "\n".join(body), marker))
        i = j + 1
    return out


def all_blocks() -> list[Block]:
    return [b for p in doc_paths() for b in blocks(p)]


def markers_outside_blocks(path: Path) -> list[tuple[int, str]]:
    """Marker comments that do not sit right before a fence (a typo would otherwise mark nothing)."""
    lines = read(path).splitlines()
    bad = []
    for n, line in enumerate(lines, 1):
        if _MARKER.match(line) and (n >= len(lines) or not _FENCE.match(lines[n])):
            bad.append((n, line.strip()))
    return bad


# ----------------------------------------------------------------------------- shell text


def _strip_comments(text: str) -> str:
    """Remove every `# comment` that starts outside quotes at the start of a word, up to its line's end."""
    scan = _Scan()
    out: list[str] = []
    prev = " "
    k = 0
    while k < len(text):
        ch = text[k]
        if ch == "#" and not scan.quoted and not scan.escaped and prev in " \t\n;|&(":
            end = text.find("\n", k)
            k = len(text) if end < 0 else end
            continue
        scan.feed(ch)
        out.append(ch)
        prev = ch
        k += 1
    return "".join(out).rstrip()


def _ends_open(text: str) -> bool:
    scan = _Scan()
    for ch in text:
        scan.feed(ch)
    return scan.quoted


def logical_lines(block: Block) -> list[str]:
    """The block's command lines: prompts and output removed (a ``console`` block with ``$ `` prompts),
    comments removed, backslash continuations and multi-line quotes joined."""
    raw = block.text.splitlines()
    prompts = block.lang == "console" and any(line.lstrip().startswith("$ ") for line in raw)
    out: list[str] = []
    buf: str | None = None
    for line in raw:
        if buf is None:
            s = line.strip()
            if prompts:
                if not s.startswith("$ "):
                    continue
                s = s[2:]
            if not s or s.startswith("#"):
                continue
            buf = s
        else:
            buf = buf + "\n" + line if _ends_open(buf) else buf + " " + line.strip()
        buf = _strip_comments(buf)
        if _ends_open(buf):
            continue
        if buf.endswith("\\"):
            buf = buf[:-1].rstrip()
            continue
        out.append(buf)
        buf = None
    if buf is not None:
        raise UnsupportedShell(f"{block.where}: unbalanced quote or trailing backslash")
    return [line for line in out if line]


def _matching_paren(text: str, start: int) -> int:
    """Index of the ``)`` closing the ``(`` at ``start``, honouring quotes and nesting."""
    depth = 0
    scan = _Scan()
    for k in range(start, len(text)):
        ch = text[k]
        if not scan.quoted and not scan.escaped:
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    return k
        scan.feed(ch)
    raise UnsupportedShell(f"unbalanced parenthesis in {text!r}")


def _pieces(line: str) -> tuple[list[str], list[str]]:
    """Split a command line at top-level ``|``, ``||``, ``&&``, ``;`` and ``&``; lift every command
    substitution out (replaced by a placeholder word). Returns (pieces, substituted command lines)."""
    if "<<" in line:
        raise UnsupportedShell(f"heredocs are not modelled: {line!r}")
    pieces: list[str] = []
    nested: list[str] = []
    cur: list[str] = []
    scan = _Scan()
    k = 0
    while k < len(line):
        ch = line[k]
        if not scan.single and not scan.escaped and line.startswith("$((", k):
            end = _matching_paren(line, k + 1)
            cur.append("0")
            k = end + 1
            continue
        if not scan.single and not scan.escaped and line.startswith("$(", k):
            end = _matching_paren(line, k + 1)
            nested.append(line[k + 2 : end])
            cur.append(SUBSTITUTION)
            k = end + 1
            continue
        if not scan.quoted and not scan.escaped and ch in "|;&":
            prev = line[k - 1] if k else ""
            if ch == "&" and (prev in "<>" or line.startswith(">", k + 1)):
                cur.append(ch)  # part of a redirection: >&, &>
                k += 1
                continue
            pieces.append("".join(cur))
            cur = []
            k += 2 if line.startswith(ch * 2, k) else 1
            continue
        scan.feed(ch)
        cur.append(ch)
        k += 1
    pieces.append("".join(cur))
    return [p.strip() for p in pieces if p.strip()], nested


def _words(piece: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    try:
        tokens = shlex.split(piece, comments=False, posix=True)
    except ValueError as exc:
        raise UnsupportedShell(f"{piece!r}: {exc}") from None
    words: list[str] = []
    skip = False
    for tok in tokens:
        if skip:
            skip = False
            continue
        m = _REDIRECT.match(tok)
        if m and not tok.startswith("-"):
            skip = m.group(3) == ""
            continue
        words.append(tok)
    assignments: list[str] = []
    while words and _ASSIGNMENT.match(words[0]):
        assignments.append(words.pop(0))
    while words and words[0] in _RESERVED_LEADING:
        words.pop(0)
    return tuple(words), tuple(assignments)


def split_commands(line: str, where: str = "", nested: bool = False) -> list[Command]:
    """Every simple command of one logical line, command substitutions included (flagged nested)."""
    pieces, subs = _pieces(line)
    out: list[Command] = []
    for piece in pieces:
        argv, assignments = _words(piece)
        if argv and (argv[0] in _COMPOUND_START or argv[0] in _RESERVED_ALONE):
            continue
        if not argv and not assignments:
            continue
        out.append(Command(argv, assignments, piece, where, nested))
    for sub in subs:
        out.extend(split_commands(sub, where, nested=True))
    return out


def commands(block: Block) -> list[Command]:
    return [c for line in logical_lines(block) for c in split_commands(line, block.where)]


def inline_spans(path: Path, programs: frozenset[str]) -> list[tuple[str, str]]:
    """(where, text) of the inline code spans outside fences that read as a command of one of
    ``programs``: `hfo drill --minutes 15`, not a bare name (`hfo`) and not a message template
    (`hfo-site <command>: configuration error: ...`, a word ending in ``:``). ``\\|`` (a pipe escaped
    inside a table) counts as ``|``."""
    out: list[tuple[str, str]] = []
    for n, line in _outside_fences(read(path)):
        for m in _INLINE.finditer(line):
            span = m.group(1).replace("\\|", "|").strip()
            words = span.split()
            if len(words) < 2 or words[0] not in programs or any(w.endswith(":") for w in words[1:]):
                continue
            out.append((f"{rel(path)}:{n}", span))
    return out


def inline_commands(path: Path, programs: frozenset[str]) -> list[Command]:
    return [c for where, span in inline_spans(path, programs) for c in split_commands(span, where)]


def expand(word: str, values: Mapping[str, str]) -> str:
    """Replace $NAME / ${NAME} with ``values`` (unknown names get a sample value) and command
    substitutions with a sample word: enough for checking arguments without running anything."""

    def sub(m: re.Match[str]) -> str:
        name = m["braced"] or m["plain"]
        return values.get(name, f"sample-{name.lower()}")

    return _VARIABLE.sub(sub, word).replace(SUBSTITUTION, "sample")


def variables_used(block: Block) -> set[str]:
    names: set[str] = set()
    for cmd in commands(block):
        for word in (*cmd.argv, *cmd.assignments):
            names |= {m["braced"] or m["plain"] for m in _VARIABLE.finditer(word)}
    return names


def variables_set(block: Block) -> set[str]:
    names: set[str] = set()
    for cmd in commands(block):
        words = cmd.assignments
        if cmd.program == "export":
            words = (*words, *cmd.argv[1:])
        names |= {w.split("=", 1)[0] for w in words if "=" in w}
        if cmd.program == "for" and len(cmd.argv) > 1:
            names.add(cmd.argv[1])
    for line in logical_lines(block):
        if m := re.match(r"\s*for\s+([A-Za-z_][A-Za-z0-9_]*)\s+in\b", line):
            names.add(m.group(1))
    return names


# ----------------------------------------------------------------------------- links and anchors


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup and punctuation dropped, lower case, spaces to dashes."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = text.lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out: set[str] = set()
    for _, line in _outside_fences(read(path)):
        m = _HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def links(path: Path) -> list[Link]:
    out: list[Link] = []
    for n, line in _outside_fences(read(path)):
        for m in _LINK.finditer(re.sub(r"`[^`]*`", "", line)):
            target = m["target"]
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            out.append(Link(rel(path), n, file_part, anchor or None))
    return out


def inline_code(path: Path) -> list[tuple[int, str]]:
    return [(n, m.group(1)) for n, line in _outside_fences(read(path)) for m in _INLINE.finditer(line)]
