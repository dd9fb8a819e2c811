#!/usr/bin/env python3
"""Checks that docs/quickstart.md shows what `scripts/damselfly up` prints.

usage: check_quickstart.py DOC UP_LOG STATE SRC BUILD

The doc's sample (the fenced block after the "output of scripts/damselfly up" comment) was
taken as the user alice in /home/alice/damselfly; the log's paths are mapped to those, every
number becomes 0 and runs of blanks one blank. Then each line of the log must be in the
sample and each line of the sample in the log, except the lines that depend on timing or on
a first run, which are compared by their kind only.
"""
import re
import sys

MARK = "<!-- the output of scripts/damselfly up"
# Lines whose content depends on how far the demo MCI and the alarms are: their kind only.
KINDS = [
    ("an MCI line", re.compile(r"^MCI \S+: ")),
    ("a VM line", re.compile(r"^ {2}demo-0 ")),
    ("an alarm line", re.compile(r"^ {2}\S+ (firing|nodata) ")),
    ("an action line", re.compile(r"^ {2}a-0 ")),
]
# Printed only when up has something to build (the doc may show it, the log may lack it),
# or when something fires or acts (the log may show it, the doc need not).
OPTIONAL = re.compile(r"^(building into |an alarm line$|an action line$)")


def sample(doc):
    lines = open(doc).read().split("\n")
    start = next(i for i, l in enumerate(lines) if l.startswith(MARK))
    if lines[start + 1] != "```":
        sys.exit("%s: the sample after the marker is not a fenced block" % doc)
    end = lines.index("```", start + 2)
    return lines[start + 2:end]


def normal(line):
    line = re.sub(r"\d+", "0", line.rstrip())
    line = re.sub(r"(?<=\S) {2,}", " ", line)
    for kind, pattern in KINDS:
        if pattern.search(line):
            return kind
    return line


def main():
    doc, log, state, src, build = sys.argv[1:6]
    mapped = []
    for line in open(log).read().rstrip("\n").split("\n"):
        line = line.replace(build, "/home/alice/damselfly/build")
        line = line.replace(src + "/scripts/damselfly", "scripts/damselfly")
        line = line.replace(src, "/home/alice/damselfly").replace(state, "/tmp/damselfly-alice")
        mapped.append(line)
    want = {normal(l) for l in sample(doc)}
    got = {normal(l) for l in mapped}
    missing = sorted(l for l in want - got if not OPTIONAL.search(l))
    extra = sorted(l for l in got - want if not OPTIONAL.search(l))
    for l in missing:
        print("in %s but not printed by up: %s" % (doc, l))
    for l in extra:
        print("printed by up but not in %s: %s" % (doc, l))
    sys.exit(1 if missing or extra else 0)


main()
