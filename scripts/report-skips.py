#!/usr/bin/env python3
"""Lists every test that skipped, with its reason, from ctest's JUnit files.

A skip is either a whole ctest test (SKIP_RETURN_CODE 77 from a check
script, or a GoogleTest case that gtest_discover_tests registered and that
called GTEST_SKIP) or a GTEST_SKIP'd case inside a ctest test that runs a
whole GoogleTest binary (ggml_compat_check): those appear only in the
test's output, which ctest keeps in the JUnit file.

With --ci, every skip must match a line of the allowed list (.ci/allowed-skips):
any other skip is a failure (exit 1), since it is a check CI is meant to run.

Usage: report-skips.py [--ci] --allowed FILE STAGE=JUNIT.xml...
"""

import argparse
import os
import re
import sys
import xml.etree.ElementTree as ET

RUN = re.compile(r"^\[ RUN      \] (\S+)")
SKIPPED = re.compile(r"^\[  SKIPPED \] (\S+) \(\d+ ms\)")
SKIP_AT = re.compile(r"^\S+:\d+: Skipped$")


def gtest_skips(output):
    """Returns [(case, reason)] for each GTEST_SKIP'd case in gtest output."""
    skips = []
    reason = []
    in_reason = False
    for line in output.splitlines():
        if RUN.match(line):
            reason, in_reason = [], False
        elif SKIP_AT.match(line):
            in_reason = True
        elif m := SKIPPED.match(line):
            skips.append((m.group(1), " ".join(reason).strip() or "(no reason)"))
            reason, in_reason = [], False
        elif in_reason and line.strip():
            reason.append(line.strip())
    return skips


def script_reason(output):
    """Returns the reason a check script gave for exiting 77."""
    lines = [l.strip() for l in output.splitlines() if l.strip()]
    said = [l for l in lines if l.startswith("SKIP:")]
    if said:
        return said[-1][len("SKIP:"):].strip()
    return lines[-1] if lines else "(no output)"


def skips_in(junit):
    """Returns [(name, reason)] for the skips recorded in one JUnit file."""
    skips = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("name")
        out = case.findtext("system-out") or ""
        skipped = case.find("skipped")
        if skipped is not None:
            if skipped.get("message", "").startswith("SKIP_RETURN_CODE"):
                skips.append((name, script_reason(out)))
            else:
                found = gtest_skips(out)
                reason = found[0][1] if found else skipped.get("message", "")
                skips.append((name, reason))
        else:
            # A ctest test that runs a whole gtest binary: its skipped cases.
            for inner, reason in gtest_skips(out):
                if inner != name:
                    skips.append((f"{name}/{inner}", reason))
    return skips


def read_allowed(path):
    """Returns [(stage or "*", test name, reason)] from the allowed list."""
    allowed = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 2)
            if len(parts) < 3:
                sys.exit(f"{path}: every entry needs STAGE TEST REASON: {line}")
            allowed.append(tuple(parts))
    return allowed


def matches(entry, name):
    """Whether an allowed entry names the skipped test `name`: exactly, or,
    for an entry CTEST_NAME/*, any case of that ctest test."""
    if entry.endswith("/*"):
        return name.startswith(entry[:-1])
    return entry == name


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ci", action="store_true")
    parser.add_argument("--allowed", required=True)
    parser.add_argument("reports", nargs="*", help="STAGE=JUNIT.xml")
    args = parser.parse_args()
    allowed = read_allowed(args.allowed)

    rows = []
    for report in args.reports:
        stage, _, path = report.partition("=")
        if not os.path.exists(path):
            continue
        for name, reason in skips_in(path):
            why_allowed = next(
                (why for s, n, why in allowed
                 if s in ("*", stage) and matches(n, name)),
                None)
            rows.append((stage, name, reason, why_allowed))

    print(f"skips: {len(rows)}")
    refused = []
    for stage, name, reason, why_allowed in rows:
        print(f"  [{stage}] {name}: {reason}")
        if why_allowed is None:
            refused.append((stage, name))
            if args.ci:
                print("      NOT ALLOWED under CI=true (not in "
                      f"{args.allowed})")
        elif args.ci:
            print(f"      allowed in CI: {why_allowed}")
    if args.ci and refused:
        print(f"skips: {len(refused)} check(s) CI is meant to run skipped")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
