#!/usr/bin/python3
"""sizes.py - keep the rooms small: no source file over 800 lines, no function over 80.

Run by `make check`. Reads src/ and tools/ (formatted by clang-format with the
repository's .clang-format, so a function body is the lines between a "{" and
a "}" in column 0). Prints every offender as FILE:LINE: message and exits 1.
"""
import re
import sys
from pathlib import Path

MAX_FILE = 800
MAX_FUNC = 80
ROOT = Path(__file__).resolve().parents[1]
def functions(lines):
    """(name, first line, length) of every function body in lines: a "{" in
    column 0 opens one, the next "}" in column 0 closes it; its name is the
    identifier before "(" in the nearest line above that starts in column 0."""
    start, name = None, None
    for i, line in enumerate(lines, 1):
        if start is None and line.startswith("{"):
            start, name = i, "?"
            for prev in reversed(lines[: i - 1]):
                if prev and not prev[0].isspace():
                    m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", prev)
                    name = m.group(1) if m else "?"
                    break
        elif start is not None and line.startswith("}"):
            yield name, start, i - start - 1
            start = None


def main():
    bad = 0
    files = sorted(list((ROOT / "src").rglob("*.[ch]")) + list((ROOT / "tools").rglob("*.[ch]")))
    for f in files:
        lines = f.read_text(encoding="utf-8", errors="replace").splitlines()
        rel = f.relative_to(ROOT)
        if len(lines) > MAX_FILE:
            print("%s:%d: file has %d lines (limit %d): split it by concern"
                  % (rel, len(lines), len(lines), MAX_FILE))
            bad += 1
        if f.suffix != ".c":
            continue
        for name, start, n in functions(lines):
            if n > MAX_FUNC:
                print("%s:%d: function %s has %d lines (limit %d)" % (rel, start, name, n, MAX_FUNC))
                bad += 1
    if bad:
        print("sizes: %d file(s)/function(s) over the limits" % bad)
        return 1
    print("sizes: %d files, none over %d lines, no function over %d" % (len(files), MAX_FILE, MAX_FUNC))
    return 0


if __name__ == "__main__":
    sys.exit(main())
