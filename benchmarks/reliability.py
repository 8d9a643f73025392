"""Reliability and security report: hostile code, model faults, crashes, bad input and limits, one table.

    python benchmarks/reliability.py [--skip-plain] [--markdown FILE]

Columns: section, case, held (contained / recovered or failed cleanly: yes/no), seconds to outcome, detail.

- hostile code: every case of ``nemo_opt.sandbox.hostile`` through bubblewrap and through the plain fallback
  (the plain rows that say "no" are its documented gaps, not regressions);
- model faults: every case of ``nemo_opt.testing.model_faults`` at the backend and agent layers, once (must
  recover) and always (must fail with a specific message within its bound);
- crashes, bad input and limits: the scenario tests that kill -9 a solve and resume it, run 20 solves at once,
  feed bad descriptions and hit each limit; each is a pytest case asserting its outcome, run here with its
  own duration taken from a JUnit report.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from nemo_opt.sandbox import sandbox_from_settings  # noqa: E402
from nemo_opt.sandbox.hostile import CASES as HOSTILE  # noqa: E402
from nemo_opt.sandbox.hostile import known_gap, run_suite, suite_limits  # noqa: E402
from nemo_opt.settings import load_settings  # noqa: E402
from nemo_opt.testing.model_faults import run_all  # noqa: E402

Row = tuple[str, str, bool, float, str]

SCENARIOS = [
    ("crash", "tests/test_resume.py::test_kill_9_then_resume_continues_from_the_last_finished_stage"),
    ("crash", "tests/test_resume.py::test_resume_after_extract_does_not_extract_again"),
    ("crash", "tests/test_resume.py::test_twenty_concurrent_solves_leave_the_run_store_consistent"),
    ("bad input", "tests/test_bad_input.py"),
    ("limits", "tests/test_limits.py"),
]


def hostile_rows(kind: str) -> list[Row]:
    settings = load_settings({"sandbox": kind}, environ={})
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="nemo-reliability-") as scratch:
        box = sandbox_from_settings(settings, Path(scratch))
        box.limits = suite_limits(box.limits)
        for result in run_suite(box):
            gap = known_gap(next(c for c in HOSTILE if c.name == result.name), box.name)
            detail = f"{result.observation}; {result.evidence}" + (f" [known gap: {gap}]" if gap else "")
            rows.append((f"hostile ({kind})", result.name, result.contained, result.seconds, detail))
    return rows


def fault_rows() -> list[Row]:
    rows: list[Row] = []
    for layer, persistent, outcome in run_all():
        name = f"{outcome.case.name} @{layer}, {'always' if persistent else 'once'}"
        rows.append(("model fault", name, outcome.ok, outcome.seconds, outcome.outcome))
    return rows


def scenario_rows() -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="nemo-reliability-") as scratch:
        report = Path(scratch) / "junit.xml"
        targets = [target for _, target in SCENARIOS]
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "slow or not slow"]
        subprocess.run([*command, f"--junitxml={report}", *targets], cwd=REPO, capture_output=True, check=False)
        for case in ET.parse(report).getroot().iter("testcase"):
            file = case.get("file") or case.get("classname", "").replace(".", "/") + ".py"
            section = next((s for s, t in SCENARIOS if t.split("::")[0].endswith(Path(file).name)), "scenario")
            failure = case.find("failure") if case.find("failure") is not None else case.find("error")
            skipped = case.find("skipped")
            if skipped is not None:
                rows.append((section, case.get("name", ""), False, 0.0, f"skipped: {skipped.get('message', '')}"))
                continue
            detail = "" if failure is None else (failure.get("message") or "")[:160]
            rows.append((section, case.get("name", ""), failure is None, float(case.get("time", 0)), detail))
    return rows


def table(rows: list[Row]) -> str:
    lines = ["| section | case | held | seconds | detail |", "|---|---|---|---|---|"]
    for section, name, held, seconds, detail in rows:
        text = " ".join(detail.split()).replace("|", "\\|")
        text = text if len(text) <= 140 else text[:137] + "..."
        lines.append(f"| {section} | {name} | {'yes' if held else 'NO'} | {seconds:.2f} | {text} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-plain", action="store_true", help="only the bubblewrap sandbox")
    parser.add_argument("--skip-scenarios", action="store_true", help="no crash / bad input / limit scenarios")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    rows = hostile_rows("bwrap")
    if not args.skip_plain:
        rows += hostile_rows("plain")
    rows += fault_rows()
    if not args.skip_scenarios:
        rows += scenario_rows()
    text = table(rows)
    print(text)
    by_section: dict[str, list[bool]] = {}
    for section, _, held, _, _ in rows:
        by_section.setdefault(section, []).append(held)
    print()
    for section, held in by_section.items():
        print(f"{section}: {sum(held)}/{len(held)} held")
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
