#!/usr/bin/env python3
"""Reject the temporaries that g++ 12 destroys twice inside a co_await expression.

g++ 12 runs the destructor of an aggregate-initialised temporary (a lambda's closure, or
`Type{...}` of an aggregate) twice when it is written inside the expression of a co_await.
For a closure that captures a shared_ptr by value that is one reference too few: nl-client
freed a UDP flow its coroutine still used (found by the ASan build). References, `this` and
no captures are harmless (trivial destructors), and a lambda named on the line before the
co_await is an lvalue, not such a temporary.

Rules, inside the expression of every co_await:
  - a lambda may capture only `this`, `&` or `&name`;
  - no brace-initialised temporaries (`Type{...}`, `f(..., {...})`) except the empty `{}`.

Usage: check-coawait-temporaries.py FILE_OR_DIR...   (exit 1 and one line per finding)
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

SOURCES = (".cpp", ".hpp", ".cc", ".h")


def strip_comments_and_strings(src: str) -> str:
    """Blank out comments and string/char literals, keeping offsets and newlines."""
    out = list(src)
    i, n = 0, len(src)

    def blank(a: int, b: int) -> None:
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            blank(i, j)
            i = j
        elif c == 'R' and src.startswith('R"', i) and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            m = re.match(r'R"([^(\s]*)\(', src[i:])
            if not m:
                i += 1
                continue
            end = src.find(")" + m.group(1) + '"', i)
            j = n if end < 0 else end + len(m.group(1)) + 2
            blank(i + 1, j)
            i = j
        elif c in "\"'":
            if c == "'" and i > 0 and src[i - 1].isalnum():  # digit separator: 1'000
                i += 1
                continue
            j = i + 1
            while j < n and src[j] != c and src[j] != "\n":
                j += 2 if src[j] == "\\" else 1
            blank(i + 1, min(j, n))
            i = j + 1
        else:
            i += 1
    return "".join(out)


def expression_end(code: str, start: int) -> int:
    """End of the expression that starts at `start`: the first `;` or unmatched closer."""
    depth = 0
    for j in range(start, len(code)):
        c = code[j]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth < 0:
                return j
        elif c == ";" and depth == 0:
            return j
    return len(code)


# `[captures]` followed by `(`, `{` or `mutable`, where `[` cannot be a subscript: not right
# after a name, `)` or `]` (spaces between allowed), unless that name is `return`.
LAMBDA = re.compile(r"(?:(?<![\w\)\]\s])|(?<=\breturn))\s*\[([^\[\]]*)\]\s*(?=[\(\{]|mutable\b)")
BRACED = re.compile(r"(?:\b[A-Za-z_][\w:<>]*|[\(,])\s*\{(?!\s*\})")
HARMLESS_CAPTURE = re.compile(r"^(this|&|&\s*[A-Za-z_]\w*)$")


def findings(path: Path) -> list[str]:
    code = strip_comments_and_strings(path.read_text(errors="replace"))
    found = []
    for m in re.finditer(r"\bco_await\b", code):
        end = expression_end(code, m.end())
        expr = code[m.end():end]
        line = code.count("\n", 0, m.start()) + 1
        # Lambda bodies are part of the expression; their own statements end at `;` inside
        # braces, which expression_end() skips because it tracks depth.
        for lm in LAMBDA.finditer(expr):
            bad = [c.strip() for c in lm.group(1).split(",") if c.strip() and not HARMLESS_CAPTURE.match(c.strip())]
            if bad:
                found.append(f"{path}:{line}: lambda in a co_await expression captures {', '.join(bad)} by value;"
                             " name it on the line before (g++ 12 destroys the temporary twice)")
        for bm in BRACED.finditer(expr):
            head = bm.group(0)
            # a lambda's body or a statement block inside one is not a temporary
            before = expr[: bm.start() + len(head)].rstrip()[:-1].rstrip()
            if (before.endswith(")") or re.search(r"\b(mutable|else|do|try|return)$", before)
                    or re.search(r"->\s*[\w:<>,\s]*$", before)):  # a lambda's trailing return type
                continue
            if re.match(r"(if|for|while|switch|catch|co_await|co_return|const|noexcept)\b", head.strip()):
                continue
            found.append(f"{path}:{line}: brace-initialised temporary `{' '.join(head.split())}...` in a co_await"
                         " expression; build it on the line before (g++ 12 destroys the temporary twice)")
    return found


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    files: list[Path] = []
    for arg in argv[1:]:
        p = Path(arg)
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix in SOURCES and "build" not in f.parts)
        else:
            files.append(p)
    problems = list(dict.fromkeys(f for p in files for f in findings(p)))
    for line in problems:
        print(line)
    print(f"check-coawait-temporaries: {len(files)} files, {len(problems)} findings", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
