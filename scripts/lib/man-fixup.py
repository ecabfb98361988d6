#!/usr/bin/env python3
"""Brings the mdoc pages swift-argument-parser's generate-manual writes up to what `man --warnings`
accepts and a reader expects, in place:

- a blank line (a paragraph break in a command's discussion) becomes `.Pp`;
- an `Examples:` block (the indented lines after it) becomes a literal display, so no example is
  filled or hyphenated mid-command;
- SEE ALSO names no hidden command (`topo.__probe`) and not argument-parser's `help`;
- EXIT STATUS is topo's table, not mdoc's generic `.Ex -std` ("0 on success, >0 on error").

    scripts/lib/man-fixup.py PAGE.1 ...
"""
import re, sys

EXIT_STATUS = """.Sh "EXIT STATUS"
.Bl -tag -width Ds
.It 0
Done; for verify, every check passed.
.It 1
verify (or run's verify) found a failed check.
.It 2
An invalid profile, lock or report, or a usage error.
.It 3
This host cannot satisfy the profile, lacks a feature or privilege, or the profile is not applied.
.It 4
apply failed and rolled back everything it had made.
.El
.Pp
topo run exits with its command's status, and 128+N when signal N interrupted it."""

HIDDEN = ("topo.__probe", "topo.help")


def fix(text):
    lines = text.split("\n")
    out = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line == "Examples:":
            out += [".Pp", "Examples:", ".Bd -literal -offset indent"]
            i += 1
            while i < len(lines) and lines[i].startswith("  "):
                # The generator writes a backslash as \e already; the indent of a continued line stays.
                out.append(lines[i][2:])
                i += 1
            out.append(".Ed")
            continue
        if line == "" and out and not out[-1].startswith(".Sh") and i + 1 < len(lines) and not lines[i + 1].startswith("."):
            out.append(".Pp")
        elif line == "":
            pass
        elif line == ".Ex -std":
            out.append("\n".join(EXIT_STATUS.split("\n")[1:]))
        elif line.startswith(".Xr ") and line.split()[1] in HIDDEN:
            pass
        else:
            out.append(line)
        i += 1
    # The last SEE ALSO entry ends without its comma.
    for k in range(len(out) - 1, -1, -1):
        if out[k].startswith(".Xr "):
            out[k] = re.sub(r" ,$", "", out[k])
            break
    text = "\n".join(out)
    if not text.endswith("\n"):
        text += "\n"
    return text


for path in sys.argv[1:]:
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(fix(text))
