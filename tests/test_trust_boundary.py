"""The trust boundary: agent-written files are untrusted, and "verified" means the frozen referee agreed.

Each test is an attack an agent (or the code it wrote) can make: editing the referee it is judged by, exporting
one model and reporting another's answer, leaving symlinks, FIFOs or absurd JSON where the host reads or writes.
Scripted model, real sandbox, solvers and files.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from nemo_opt.pipeline import Pipeline
from nemo_opt.result import RunResult
from nemo_opt.sandbox import bwrap_available, make_sandbox
from nemo_opt.sandbox.base import Limits
from nemo_opt.settings import Settings
from nemo_opt.spec import ProblemSpec, data_from_spec
from nemo_opt.stages.agents import final_referee_check
from nemo_opt.stages.optimize import Checks, Judging, accept_optimizer
from nemo_opt.stages.referee import Referee
from nemo_opt.stages.simulate import accept_simulator
from nemo_opt.stages.validate import validate
from nemo_opt.store import RunStore
from nemo_opt.testing import OpenAICompatServer, Reply, RoleRouter
from nemo_opt.workspace import Workspace
from tests.scenarios import EXTRACT, OPTIMIZER, SIMULATOR, call, product_mix, say

REPO = Path(__file__).resolve().parent.parent
PROBLEM = (REPO / "examples" / "product_mix.md").read_text()
SPEC = ProblemSpec.model_validate(product_mix.SPEC)
# Without the finishing-hours limit the optimum is 4170 (51 tables, 12 chairs), which breaks that limit.
WRONG_MODEL = product_mix.MODEL_HEAD + product_mix.MODEL_TAIL.replace("PROFIT_KEY", "profit")
CHEATING_SIMULATOR = product_mix.SIMULATOR_CODE.replace("if _over(finishing,", "if False and _over(finishing,")
needs_bwrap = pytest.mark.skipif(not bwrap_available(), reason="bubblewrap is not usable here (apt install bubblewrap)")


def _solve(
    settings: Settings, optimizer: list[Reply], simulator: list[Reply] | None = None
) -> tuple[RunResult, OpenAICompatServer]:
    router = RoleRouter(
        {EXTRACT: [product_mix.EXTRACTION], SIMULATOR: simulator or product_mix.SIMULATOR, OPTIMIZER: optimizer}
    )
    with OpenAICompatServer(router) as server:
        settings.model = f"openai-compatible:scripted@{server.url}"
        result = Pipeline(settings).solve(PROBLEM)
    return result, server


def _write_and_submit(model: str) -> list[Reply]:
    return [
        say("", call("write_file", path="model.py", content=model)),
        say("", call("bash", command="python model.py")),
        say("", call("submit", summary="done")),
    ]


def _observations(server: OpenAICompatServer, role: str) -> list[str]:
    """Every tool result the agent of ``role`` was shown, from the last request it made."""
    requests = [r for r in server.chat_requests if role in json.dumps(r["messages"][0])]
    return [str(m["content"]) for m in requests[-1]["messages"] if m["role"] == "tool"]


def _reports(result: RunResult) -> list[dict[str, Any]]:
    return [r for o in result.optimizers for r in o["reports"]]


# --- the referee cannot be changed by the optimizer it judges ---------------------------------------------------
CHEATS = [
    say(
        "The simulator must be wrong about finishing hours; I'll relax that check.",
        call(
            "bash", command="sed -i 's/if _over(finishing,/if False and _over(finishing,/' ../../simulator/simulator.py"
        ),
    ),
    say("", call("write_file", path="../../simulator/simulator.py", content=CHEATING_SIMULATOR)),
    say("", call("bash", command="""python -c "open('../../data.json', 'w').write('{}')" """)),
    say(
        "",
        call(
            "bash",
            command="echo 'def simulate(s, d, tol=0): return {}' > ../../.nemo/referee/v1/simulator/simulator.py",
        ),
    ),
    say("", call("bash", command="python model.py")),
    say("", call("submit", summary="The simulator no longer objects.")),
]


@needs_bwrap
def test_an_optimizer_cannot_edit_the_simulator_that_judges_it(settings: Settings) -> None:
    settings.repair_rounds = 1
    result, server = _solve(settings, _write_and_submit(WRONG_MODEL) + CHEATS)
    assert result.error is None, result.error
    # The wrong answer stays wrong: the finishing-hours violation is reported in both rounds.
    assert result.objective == pytest.approx(product_mix.WRONG_OBJECTIVE)
    assert result.level == "unverified" and not result.verified and result.exit_code == 1
    reports = _reports(result)
    assert len(reports) == 2 and all(
        product_mix.VIOLATED in {i.get("constraint") for i in r["issues"]} for r in reports
    )
    # Every attempt was refused where it was made, and nothing changed.
    shown = "\n".join(_observations(server, OPTIMIZER))
    assert shown.count("Read-only file system") >= 3 and "outside your own folder" in shown
    assert (result.folder / "simulator" / "simulator.py").read_text() == product_mix.SIMULATOR_CODE
    assert json.loads((result.folder / "data.json").read_text()) == data_from_spec(SPEC)
    assert result.package is not None
    assert (result.package / "simulator" / "simulator.py").read_text() == product_mix.SIMULATOR_CODE
    assert not any(i["kind"] == "tampering" for r in reports for i in r["issues"])


def test_in_the_plain_sandbox_tampering_is_caught_undone_and_never_verified(settings: Settings) -> None:
    settings.repair_rounds = 1
    settings.sandbox = "plain"
    result, _ = _solve(settings, _write_and_submit(WRONG_MODEL) + CHEATS)
    assert result.error is None, result.error
    assert result.level == "unverified" and result.objective == pytest.approx(product_mix.WRONG_OBJECTIVE)
    repair = _reports(result)[-1]
    kinds = [i["kind"] for i in repair["issues"]]
    # The edits went through (plain cannot stop them) but the verdict came from the frozen copy, the
    # tampering was reported to the agent, and the files were put back.
    assert kinds[0] == "tampering" and "constraint_violation" in kinds
    assert "simulator/simulator.py" in repair["issues"][0]["message"]
    assert (result.folder / "simulator" / "simulator.py").read_text() == product_mix.SIMULATOR_CODE
    assert json.loads((result.folder / "data.json").read_text()) == data_from_spec(SPEC)


def test_the_plain_sandbox_reaches_objective_checked_at_most(settings: Settings) -> None:
    settings.sandbox = "plain"
    result, _ = _solve(settings, _write_and_submit(product_mix.RIGHT_MODEL))
    assert result.objective == pytest.approx(product_mix.EXPECTED_OBJECTIVE)
    assert result.level == "objective-checked" and result.exit_code == 6
    assert "plain sandbox" in result.level_reason and "bubblewrap" in result.level_reason


# --- the exported model is tied to the answer ---------------------------------------------------------------
def test_a_model_that_exports_nothing_is_objective_checked_not_verified(settings: Settings) -> None:
    # The loosened model of the issue: it drops the (non-binding here) chair orders and exports no model file.
    silent = product_mix.RIGHT_MODEL.replace('h.addConstr(make["chair"] >= data["min_chairs"])\n', "")
    silent = silent.replace('h.writeModel("model.mps")\nsolution["model_file"] = "model.mps"\n', "")
    assert "writeModel" not in silent and "min_chairs" not in silent
    result, _ = _solve(settings, _write_and_submit(silent))
    assert result.objective == pytest.approx(product_mix.EXPECTED_OBJECTIVE) and result.error is None
    assert result.level == "objective-checked" and not result.verified and result.exit_code == 6
    assert "no model file" in result.level_reason
    assert result.package is not None
    assert "verification: **objective-checked**" in (result.package / "report.md").read_text()


def test_exporting_one_model_and_reporting_another_answer_fails_validation(settings: Settings) -> None:
    settings.repair_rounds = 0
    # Solves the right model, then exports a changed one (profit of a table 999): the answer is not that model's.
    decoy = product_mix.RIGHT_MODEL.replace(
        'h.writeModel("model.mps")', 'h.changeColCost(0, 999.0)\nh.writeModel("model.mps")'
    )
    result, _ = _solve(settings, _write_and_submit(decoy))
    report = _reports(result)[0]
    assert not report["passed"] and result.level == "unverified"
    assert any(i["kind"] == "model_tie" for i in report["issues"]), report["issues"]


# --- the host never follows what agents create -----------------------------------------------------------------
def test_a_run_log_symlink_does_not_make_the_host_write_outside(settings: Settings, tmp_path: Path) -> None:
    victim = tmp_path / "site-packages" / "evil.pth"
    victim.parent.mkdir()
    victim.write_text("original\n")
    model = (
        product_mix.RIGHT_MODEL
        + f"\nimport os\nos.path.lexists('run.log') and os.remove('run.log')\nos.symlink({str(victim)!r}, 'run.log')\n"
    )
    result, _ = _solve(settings, _write_and_submit(model))
    assert victim.read_text() == "original\n"
    log = result.folder / "optimizers" / "opt_1" / "run.log"
    assert log.is_file() and not log.is_symlink()
    assert result.objective == pytest.approx(product_mix.EXPECTED_OBJECTIVE) and result.error is None


def test_a_history_symlink_does_not_make_the_host_copy_outside(settings: Settings, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    model = (
        product_mix.RIGHT_MODEL
        + f"\nimport os\nos.path.lexists('history') or os.symlink({str(outside)!r}, 'history')\n"
    )
    result, _ = _solve(settings, _write_and_submit(model))
    assert list(outside.iterdir()) == []
    history = result.folder / "optimizers" / "opt_1" / "history"
    assert history.is_dir() and not history.is_symlink() and (history / "round_0" / "model.py").is_file()
    assert result.error is None and result.package is not None


def test_a_simulator_symlink_to_a_host_file_never_reaches_the_model_or_the_package(
    settings: Settings, tmp_path: Path
) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text("TOPSECRET-4711\n")
    simulator = [
        *product_mix.SIMULATOR[:2],
        say("", call("bash", command=f"ln -sf {secret} simulator/__init__.py && ln -sf {secret} simulator/notes.py")),
        *product_mix.SIMULATOR[2:],
    ]
    optimizer = [
        say("", call("read_file", path="../../simulator/__init__.py")),
        say("", call("bash", command="cat ../../simulator/__init__.py ../../simulator/notes.py")),
        *_write_and_submit(product_mix.RIGHT_MODEL),
    ]
    result, server = _solve(settings, optimizer, simulator)
    assert result.error is None, result.error
    assert "TOPSECRET" not in json.dumps(server.chat_requests) or not bwrap_available()
    assert result.package is not None
    packaged = {p.relative_to(result.package): p.read_bytes() for p in result.package.rglob("*") if p.is_file()}
    assert not any(b"TOPSECRET" in data for data in packaged.values())
    frozen = result.folder / ".nemo" / "referee" / "v1" / "simulator"
    assert (frozen / "__init__.py").read_bytes() == b"" and not (frozen / "notes.py").exists()
    assert not any(b"TOPSECRET" in p.read_bytes() for p in (result.folder / ".nemo").rglob("*") if p.is_file())
    record = json.loads((result.folder / ".nemo" / "referee" / "referee.json").read_text())
    assert "symlink" in record["versions"][0]["refused"]["notes.py"]


# --- the host never hangs or crashes on agent output ------------------------------------------------------------
@pytest.fixture
def judged(tmp_path: Path) -> tuple[Workspace, Referee]:
    ws = product_mix.write_workspace(Workspace(tmp_path / "run"))
    referee = Referee(ws, make_sandbox("auto", ws.root, Limits(timeout=60)), data_from_spec(SPEC), timeout=60)
    assert accept_simulator(referee, SPEC).ok
    ws.make_dirs("optimizers/opt_1")
    return ws, referee


def _validate(ws: Workspace, referee: Referee) -> Any:
    return validate(
        SPEC, ws, referee, ws.optimizer_dir(1) / "solution.json", optimizer="o", round_number=0, atol=1e-6, rtol=1e-6
    )


def test_a_fifo_solution_is_refused_at_once(judged: tuple[Workspace, Referee]) -> None:
    ws, referee = judged
    os.mkfifo(ws.optimizer_dir(1) / "solution.json")
    started = time.monotonic()
    report = _validate(ws, referee)
    assert time.monotonic() - started < 5
    assert not report.passed and report.issues[0].kind == "malformed_solution"
    assert "FIFO" in report.issues[0].message


def test_deeply_nested_or_huge_solutions_are_refused_not_crashed(judged: tuple[Workspace, Referee]) -> None:
    ws, referee = judged
    (ws.optimizer_dir(1) / "solution.json").write_text("[" * 200_000)
    report = _validate(ws, referee)
    assert not report.passed and "nests deeper" in report.issues[0].message
    with (ws.optimizer_dir(1) / "solution.json").open("wb") as handle:
        handle.truncate(40 * 1024 * 1024)
    report = _validate(ws, referee)
    assert not report.passed and "more than" in report.issues[0].message


def test_a_model_that_leaves_a_fifo_gets_a_refusal_not_a_hang(judged: tuple[Workspace, Referee]) -> None:
    ws, _ = judged
    folder = ws.optimizer_dir(1)
    (folder / "model.py").write_text("import os\nos.mkfifo('solution.json')\n")
    sandbox = make_sandbox("auto", ws.root, Limits(timeout=60)).scoped([folder])
    started = time.monotonic()
    verdict = accept_optimizer(ws, sandbox, SPEC, folder, 60)
    assert time.monotonic() - started < 30
    assert not verdict.ok and "FIFO" in verdict.reason


def test_a_conftest_cannot_make_failing_simulator_tests_pass(judged: tuple[Workspace, Referee]) -> None:
    ws, referee = judged
    ws.write_text("simulator/test_simulator.py", "def test_wrong():\n    assert 1 == 2\n")
    ws.write_text(
        "simulator/conftest.py",
        "import pytest\n\n\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n"
        "    outcome = yield\n    outcome.get_result().outcome = 'passed'\n",
    )
    verdict = accept_simulator(referee, SPEC)
    assert not verdict.ok and "assert 1 == 2" in verdict.reason
    assert referee.current is not None and referee.current.number == 1  # the accepted version stays


def test_an_unexpected_error_still_ends_the_run_cleanly(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr("nemo_opt.stages.consensus.decide", broken)
    result, _ = _solve(settings, _write_and_submit(product_mix.RIGHT_MODEL))
    assert result.error_kind == "internal" and result.exit_code == 4
    assert "RecursionError" in (result.error or "")
    saved = json.loads((result.folder / "result.json").read_text())
    assert saved["status"] == "failed" and saved["error_kind"] == "internal"
    row = RunStore(settings.store_path).get_run(result.run_id)
    assert row is not None and row["status"] == "failed"


# --- a repaired simulator is frozen again, and earlier verdicts are judged again -------------------------------
def _passed_outcome(ws: Workspace, referee: Referee) -> Any:
    from nemo_opt.stages.optimize import OptimizerOutcome

    folder = ws.optimizer_dir(1)
    snapshot = folder / "history" / "round_0"
    snapshot.mkdir(parents=True)
    (snapshot / "solution.json").write_text(
        json.dumps({"status": "optimal", "objective": 1900.0, "variables": {"make": {"table": 20, "chair": 10}}})
    )
    outcome = OptimizerOutcome("optimizer_1", 1, "highs", folder, accepted_rounds=[0])
    report = validate(
        SPEC, ws, referee, snapshot / "solution.json", optimizer="o", round_number=0, atol=1e-6, rtol=1e-6
    )
    assert report.passed and report.referee_version == 1
    outcome.record(report)
    return outcome


def test_a_repaired_simulator_is_a_new_version_and_earlier_passes_are_judged_again(
    judged: tuple[Workspace, Referee], settings: Settings
) -> None:
    ws, referee = judged
    outcome = _passed_outcome(ws, referee)
    # The "repair" now asks for at least 25 tables; its own tests still pass, and the earlier pass no longer holds.
    stricter = product_mix.SIMULATOR_CODE.replace(
        "    profit = sum(",
        '    if make["table"] < 25 - tol:\n'
        '        violations.append({"constraint": "table_orders"})\n'
        "    profit = sum(",
    )
    ws.write_text("simulator/simulator.py", stricter)
    assert accept_simulator(referee, SPEC).ok and referee.current is not None and referee.current.number == 2
    final_referee_check([outcome], Judging(SPEC, ws, referee, None, Checks(1e-6, 1e-6, 0, 60.0), 0))
    assert outcome.reports[-1].referee_version == 2 and not outcome.reports[-1].passed
    assert outcome.level.value == "unverified" and "table_orders" in outcome.reports[-1].render()
    record = json.loads((ws.root / ".nemo" / "referee" / "referee.json").read_text())
    assert [v["version"] for v in record["versions"]] == [1, 2]
    assert record["versions"][0]["hashes"] != record["versions"][1]["hashes"]


def test_no_answer_is_verified_when_the_frozen_tests_fail_again(
    judged: tuple[Workspace, Referee], settings: Settings
) -> None:
    ws, referee = judged
    outcome = _passed_outcome(ws, referee)
    assert outcome.level.value == "objective-checked"  # no model file here, so objective-checked at best
    # The frozen tests depend on something outside the referee that changed: they fail when run again.
    assert referee.current is not None
    files = dict(referee.current.files)
    files["simulator/test_simulator.py"] += (
        b"\n\ndef test_flaky():\n    import random\n    assert random.random() > 2\n"
    )
    from nemo_opt.stages.referee import RefereeVersion

    referee.current = RefereeVersion(1, files)
    final_referee_check([outcome], Judging(SPEC, ws, referee, None, Checks(1e-6, 1e-6, 0, 60.0), 0))
    assert outcome.level.value == "unverified" and "no longer pass" in outcome.level_reason


# --- a model that is too tight where it binds: a feasible plan better than the answer exists -----------------
def _with_cut(cut: str) -> str:
    anchor = 'h.addConstr(make["chair"] >= data["min_chairs"])'
    return product_mix.RIGHT_MODEL.replace(anchor, f"{anchor}\n{cut}")


@pytest.mark.parametrize(
    "cut",
    [
        # Integer rounding hides it from probes near x* = (0, 80): one table more breaks it.
        'h.addConstr(make["table"] <= 0.4)',
        # Drowned among 100 scaled copies of the carpentry row, which fill the probe budget.
        'h.addConstr(make["table"] <= 0)\nfor k in range(1, 101):\n'
        '    h.addConstr(k * sum(data["carpentry_hours"][p] * make[p] for p in products) <= k * 240)',
        # Two cuts, each shadowing the other: dropping one alone changes nothing.
        'h.addConstr(make["table"] <= 0)\nh.addConstr(make["table"] + 0.001 * make["chair"] <= 0.08)',
    ],
    ids=["integer-rounding", "drowned-in-copies", "two-shadowing-cuts"],
)
def test_a_cut_that_hides_the_optimum_is_not_verified(settings: Settings, cut: str) -> None:
    settings.repair_rounds = 0
    result, _ = _solve(settings, _write_and_submit(_with_cut(cut)))
    # The model's own optimum is 0 tables and 80 chairs (4000): feasible for the problem, but not its optimum.
    assert result.objective == pytest.approx(4000.0)
    assert result.level == "unverified" and not result.verified
    report = _reports(result)[0]
    messages = " ".join(i["message"] for i in report["issues"])
    # Found by a probe near x* or, where no probe reaches, by relaxing what binds (see tests/test_relax.py).
    assert "too tight" in messages, messages


def test_a_resumed_plain_run_does_not_believe_planted_checkpoints(settings: Settings) -> None:
    settings.sandbox, settings.repair_rounds = "plain", 1
    result, _ = _solve(settings, _write_and_submit(WRONG_MODEL) + _write_and_submit(WRONG_MODEL))
    assert result.level == "unverified"
    # What an agent's code can do under plain: claim the optimizer verified, and make the run look unfinished.
    folder = result.folder
    outcome = json.loads((folder / ".nemo" / "checkpoints" / "outcome_1.json").read_text())
    outcome.update(level="verified", verified=True, level_reason="")
    (folder / ".nemo" / "checkpoints" / "outcome_1.json").write_text(json.dumps(outcome))
    stages = json.loads((folder / ".nemo" / "stages.json").read_text())
    for stage in ("consensus", "package"):
        stages["finished"].pop(stage, None)
    (folder / ".nemo" / "stages.json").write_text(json.dumps(stages))
    (folder / "result.json").unlink()
    (folder / "consensus.json").unlink()
    with OpenAICompatServer(RoleRouter({EXTRACT: []})) as server:
        settings.model = f"openai-compatible:scripted@{server.url}"
        resumed = Pipeline(settings).resume(folder)
    assert resumed.level != "verified" and not resumed.verified


@pytest.mark.timeout(60)
def test_unclosed_strings_full_of_escaped_quotes_are_read_in_linear_time(judged: tuple[Workspace, Referee]) -> None:
    # Quadratic scanning made 200 KB of this take minutes; 8 MB must end (refused as malformed) well within bounds.
    ws, referee = judged
    (ws.optimizer_dir(1) / "solution.json").write_text('{"status": "' + '\\"' * 4_000_000)
    report = _validate(ws, referee)
    assert not report.passed and report.issues[0].kind == "malformed_solution"


@pytest.mark.parametrize(
    ("objective", "variables", "kind"),
    [
        ('"inf"', '{"make": {"table": 30, "chair": 40}}', "objective_mismatch"),
        ("4100", '{"make": {"table": 1' + "0" * 400 + ', "chair": 40}}', "malformed_solution"),
        ("1" + "0" * 5000, '{"make": {"table": 30, "chair": 40}}', "malformed_solution"),
    ],
    ids=["objective-inf-string", "400-digit-value", "5000-digit-objective"],
)
def test_absurd_numbers_are_refused_not_believed(
    judged: tuple[Workspace, Referee], objective: str, variables: str, kind: str
) -> None:
    ws, referee = judged
    (ws.optimizer_dir(1) / "solution.json").write_text(
        f'{{"status": "optimal", "objective": {objective}, "variables": {variables}}}'
    )
    report = _validate(ws, referee)
    assert not report.passed and kind in [i.kind for i in report.issues], report.render()


def test_one_validation_is_judged_and_recorded_by_one_simulator_version(judged: tuple[Workspace, Referee]) -> None:
    ws, referee = judged
    pinned = referee.pinned()
    stricter = product_mix.SIMULATOR_CODE.replace(
        "    profit = sum(",
        '    if make["table"] < 25 - tol:\n        violations.append({"constraint": "t"})\n    profit = sum(',
    )
    ws.write_text("simulator/simulator.py", stricter)
    assert accept_simulator(referee, SPEC).ok and referee.current is not None and referee.current.number == 2
    # Another optimizer's validation that began before the repair goes on with version 1, and says so.
    assert pinned.current is not None and pinned.current.number == 1
    with pytest.raises(RuntimeError, match="does not adopt"):
        pinned.adopt(referee.current)
