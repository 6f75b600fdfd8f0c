#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Compares an igt_runner results.json with the expectations file.

usage: report.py RESULTS_JSON TESTLIST EXPECTATIONS
Prints a table (test, result, expected, seconds) and exits 1 if any test's result
differs from its expectation, if a listed test has no result, or if an expectation
other than pass gives no reason. An expectation may name several results ("pass|fail")
for a test whose result depends on timing; it too needs its reason.
"""
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


def main():
    results_json, testlist, expectations = sys.argv[1:4]
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
        print(f"{name}: in the expectations but not in the test list")
        bad += 1
    total = len(listed)
    passed = sum(1 for n in listed if tests.get(n, {}).get("result") == "pass")
    print(f"igt: {passed} of {total} passed; {total - bad} as expected, {bad} not")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
