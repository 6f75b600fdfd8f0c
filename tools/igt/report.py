#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Compares an igt_runner results.json with the expectations file.

usage: report.py RESULTS_JSON TESTLIST EXPECTATIONS [BAT_TESTLIST]
Prints a table (test, result, expected, seconds) and exits 1 if any test's result
differs from its expectation, if a listed test has no result, or if an expectation
other than pass gives no reason. An expectation may name several results ("pass|fail")
for a test whose result depends on timing; it too needs its reason.

With BAT_TESTLIST (IGT's i915 fast-feedback list), every test of it must be in TESTLIST
or match an "excluded" expectation: a glob pattern ("igt@kms_*") with its reason.
"""
import fnmatch
import json
import sys


def load_expectations(path):
    exp = {}
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, rest = line.partition(" ")
        result, _, reason = rest.strip().partition(" ")
        reason = reason.strip()
        if result != "pass" and not reason:
            sys.exit(f"{path}:{n}: '{name}' expects {result} without a reason")
        exp[name] = (result, reason)
    return exp


def check_bat(bat, listed, exp):
    """BAT tests neither run nor excluded with a reason; prints the exclusions."""
    excluded = {k: v[1] for k, v in exp.items() if v[0] == "excluded"}
    run, missing, counts = set(listed), [], {k: 0 for k in excluded}
    for line in open(bat, encoding="utf-8"):
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        # A listed test covers its dynamic subtests ("igt@t@s@engine" by "igt@t@s"), and
        # a test without subtests in the BAT list is its one subtest here.
        if any(name == t or name.startswith(t + "@") or t.startswith(name + "@") for t in run):
            continue
        pat = next((p for p in excluded if fnmatch.fnmatchcase(name, p)), None)
        if pat is None:
            missing.append(name)
        else:
            counts[pat] += 1
    print("BAT tests not run (i915 fast-feedback list):")
    for pat, n in counts.items():
        print(f"  {pat} ({n}): {excluded[pat]}")
    for name in missing:
        print(f"{name}: in the BAT list but neither run nor excluded")
    return len(missing)


def main():
    results_json, testlist, expectations = sys.argv[1:4]
    bat = sys.argv[4] if len(sys.argv) > 4 else None
    tests = json.load(open(results_json, encoding="utf-8")).get("tests", {})
    exp = load_expectations(expectations)
    listed = [l.strip() for l in open(testlist, encoding="utf-8")
              if l.strip() and not l.startswith("#")]
    bad = 0
    print(f"{'test':58} {'result':8} {'expected':8} {'s':>6}")
    for name in listed:
        t = tests.get(name)
        got = t["result"] if t else "missing"
        secs = t.get("time", {}).get("end", 0) - t.get("time", {}).get("start", 0) if t else 0
        want, reason = exp.get(name, ("pass", ""))
        ok = got in want.split("|")
        mark = "" if ok else "  <-- differs"
        bad += not ok
        print(f"{name:58} {got:8} {want:8} {secs:6.2f}{mark}")
        if not ok and reason:
            print(f"{'':58} expected because: {reason}")
    for name in sorted(set(exp) - set(listed)):
        if exp[name][0] == "excluded":
            continue
        print(f"{name}: in the expectations but not in the test list")
        bad += 1
    if bat:
        bad += check_bat(bat, listed, exp)
    total = len(listed)
    passed = sum(1 for n in listed if tests.get(n, {}).get("result") == "pass")
    print(f"igt: {passed} of {total} passed; {total - bad} as expected, {bad} not")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
