"""Reading the guide's Markdown: fenced blocks, shell commands with their shown output,
and a matcher for that output (``...`` stands for whatever varies)."""

import re
from dataclasses import dataclass, field

FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
ELLIPSIS = "..."


@dataclass
class Command:
    text: str
    expected: list = field(default_factory=list)  # the "# ..." lines shown under it


def blocks(markdown, language):
    """The bodies of the fenced blocks of ``language``, in order."""
    return [body for lang, body in FENCE.findall(markdown) if lang == language]


def commands(markdown):
    """Each command of the ```bash blocks (``\\`` continuations joined), with the
    comment lines that follow it as its expected output."""
    found = []
    for body in blocks(markdown, "bash"):
        lines = body.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            i += 1
            if not line.strip():
                continue
            if line.startswith("#"):
                found[-1].expected.append(line[2:] if line.startswith("# ") else "")
                continue
            text = line
            while text.endswith("\\") and i < len(lines):
                text = text[:-1] + " " + lines[i].strip()
                i += 1
            found.append(Command(text))
    return found


def normalize(line):
    return " ".join(line.split())


def pattern(expected_line):
    """A regex for one expected line: whitespace runs are one space, ``...`` is anything."""
    parts = normalize(expected_line).split(ELLIPSIS)
    return re.compile(".*".join(re.escape(part) for part in parts))


def unmatched(expected, actual):
    """The first expected line not found, in order, among ``actual``'s lines (None: all
    found). A line that is only ``...`` stands for lines left out; blank lines are skipped."""
    lines = [normalize(line) for line in actual.splitlines() if line.strip()]
    position = 0
    for line in expected:
        if normalize(line) in ("", ELLIPSIS):
            continue
        regex = pattern(line)
        while position < len(lines) and not regex.fullmatch(lines[position]):
            position += 1
        if position == len(lines):
            return line
        position += 1
    return None
