"""The whole-file agent protocol's pieces: reading files from a reply, the harness's PuLP ending (run for real),
and tracing P*'s numbers to the problem text."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nemo_opt.agent.tools import whole_files
from nemo_opt.spec import ProblemSpec
from nemo_opt.stages.optimize import with_ending
from nemo_opt.stages.trace import numbers_in_text, trace_numbers
from tests.scenarios import whole_files as scenario
from tests.scenarios.product_mix import SPEC

REPO = Path(__file__).resolve().parent.parent
PAIR = ("simulator/simulator.py", "simulator/test_simulator.py")


def test_named_blocks_go_to_their_paths_and_unnamed_ones_fill_the_rest_in_order() -> None:
    reply = "### simulator/test_simulator.py\n```python\nT\n```\nand\n```python\nS\n```\n"
    assert whole_files(reply, PAIR) == [("simulator/simulator.py", "S\n"), ("simulator/test_simulator.py", "T\n")]
    # A bare file name is enough; a bash block is never taken for a file.
    reply = "simulator.py:\n```py\nS\n```\n```bash\npython -m pytest\n```\n"
    assert whole_files(reply, PAIR) == [("simulator/simulator.py", "S\n")]


def test_one_wanted_file_takes_the_longest_unnamed_block() -> None:
    reply = "```python\nimport pulp\nprob = 1\nx = 2\n```\nUsage:\n```python\nprint(x)\n```"
    assert whole_files(reply, ("model.py",)) == [("model.py", "import pulp\nprob = 1\nx = 2\n")]
    assert whole_files("I will write the model now.", ("model.py",)) == []
    assert whole_files("```python\n\n```", ("model.py",)) == []


SIGNS = {"simulator/simulator.py": r"^\s*def simulate\(", "simulator/test_simulator.py": r"^\s*def test_\w*\("}


def test_an_unnamed_block_goes_to_the_file_its_content_belongs_to() -> None:
    # Seen with a 1.5B model: asked to fix its tests once both files were given, it replied with an unnamed
    # test file; the order rule alone saved it over the simulator.
    tests = "from simulator.simulator import simulate\n\ndef test_a_feasible_solution():\n    assert True\n"
    reply = f"The test is wrong. Here is the updated test:\n```python\n{tests}```\nIt passes now."
    assert whole_files(reply, PAIR, SIGNS) == [("simulator/test_simulator.py", tests)]
    simulator = "def simulate(solution, data, atol=1e-6, rtol=1e-6):\n    return {}\n"
    assert whole_files(f"```python\n{simulator}```", PAIR[::-1], SIGNS) == [("simulator/simulator.py", simulator)]
    # A block that names its path on its own first line is that file, whatever the order.
    reply = "```python\n# simulator/test_simulator.py\nimport json\n```"
    assert whole_files(reply, PAIR) == [("simulator/test_simulator.py", "# simulator/test_simulator.py\nimport json\n")]
    # ...but a first-line comment that only mentions a path among other words does not name the block.
    reply = "```python\n# checks simulator/simulator.py\nimport json\n```"
    assert whole_files(reply, PAIR) == [("simulator/simulator.py", "# checks simulator/simulator.py\nimport json\n")]
    # A block with both a simulate and tests matches two signs: the order rule decides, as before.
    both = simulator + tests
    assert whole_files(f"```python\n{both}```", PAIR, SIGNS) == [("simulator/simulator.py", both)]


def test_a_quoted_line_beside_a_whole_file_does_not_replace_the_other_file() -> None:
    # Seen with a 1.5B model asked to fix its failing test: it quoted the failing assertion in a block of its
    # own above the whole test file, and the line was saved over its working 48-line simulator.
    tests = "from simulator.simulator import simulate\n\ndef test_a_feasible_solution():\n    assert True\n"
    reply = (
        "The test does not check the violations. The assertion should be:\n\n```python\n"
        'assert verdict["feasible"], verdict["violations"]\n```\n\nHere is the corrected test:\n\n'
        f"```python\n{tests}```\n"
    )
    assert whole_files(reply, PAIR, SIGNS) == [("simulator/test_simulator.py", tests)]
    # Alone in a reply, an unnamed draft still goes to the file asked for (the check then says what it lacks).
    draft = "def simulat(solution, data):\n    return {}\n"
    assert whole_files(f"```python\n{draft}```", PAIR, SIGNS) == [("simulator/simulator.py", draft)]


def test_the_simulator_skeletons_checks_apply_the_tolerance(tmp_path: Path) -> None:
    from nemo_opt.stages.context import (
        CHECK_PLACEHOLDER,
        simulator_skeleton,
        with_simulator_helpers,
        without_simulator_helpers,
    )

    skeleton = simulator_skeleton(ProblemSpec.model_validate(SPEC))
    assert CHECK_PLACEHOLDER in skeleton  # an open call the agent must replace, not a commented example
    assert "def at_most" not in skeleton and "def value" not in skeleton  # the system's, not the agent's to copy
    body = (
        skeleton.replace(f"    {CHECK_PLACEHOLDER}", "    pass")
        .replace(
            "    objective = ...",
            "    at_most('carpentry', 4 * make['table'] + 3 * make['chair'], 240, ['make'])\n"
            "    at_least('chair orders', make['chair'], 10, ['make'])\n"
            "    exactly('balance', make['table'] - make['table'], 0, ['make'])\n"
            "    whole('whole tables', make['table'], ['make'])\n"
            "    objective = ...",
        )
        .replace("objective = ...", "objective = 70 * make['table'] + 50 * make['chair']")
    )
    saved = with_simulator_helpers(body)
    assert with_simulator_helpers(saved) == saved  # the agent sending the saved file back: one copy, not two
    assert without_simulator_helpers(saved) == body  # what the agent is shown of its file
    # The agent's own names for simulate's parameters, and a helper of its own, are kept working.
    renamed = with_simulator_helpers(
        body.replace("def simulate(solution, data, atol=1e-6, rtol=1e-6):", "def simulate(sol, data, tol=1e-6):")
        + "\n\ndef whole(name, v, variables):\n    pass  # the agent's own: never a violation\n"
    )
    for code in (saved, renamed):
        namespace: dict[str, object] = {}
        exec(compile(code, "simulator.py", "exec"), namespace)  # noqa: S102 - the test's own code
        simulate = namespace["simulate"]
        data = _data()
        ok = simulate({"make": {"table": 30.0000000001, "chair": 40.0}}, data)  # type: ignore[operator]
        assert ok["feasible"] and ok["objective"] == pytest.approx(4100.0)
        bad = simulate({"make": {"table": 60.5, "chair": 9.0}}, data)  # type: ignore[operator]
        expected = {"carpentry", "chair orders"} | ({"whole tables"} if code is saved else set())
        assert {v["constraint"] for v in bad["violations"]} == expected
        carpentry = next(v for v in bad["violations"] if v["constraint"] == "carpentry")
        assert carpentry["amount"] == pytest.approx(4 * 60.5 + 27 - 240) and carpentry["variables"] == ["make"]
        missing = simulate({"make": {"table": 1.0}}, data)  # type: ignore[operator]
        assert "missing_value" in {v["constraint"] for v in missing["violations"]}


def _run(folder: Path, body: str, names: list[str], data: dict[str, object]) -> tuple[int, str]:
    (folder / "data.json").write_text(json.dumps(data))
    (folder / "model.py").write_text(with_ending(body, names))
    run = subprocess.run([sys.executable, "model.py"], cwd=folder, capture_output=True, text=True, timeout=120)
    return run.returncode, run.stdout + run.stderr


def test_the_ending_exports_solves_and_writes_the_solution_in_the_shape_of_p_star(tmp_path: Path) -> None:
    data = {key: value for key, value in _data().items()}
    code, output = _run(tmp_path, scenario.RIGHT, ["make"], data)
    assert code == 0, output
    solution = json.loads((tmp_path / "solution.json").read_text())
    assert solution["status"] == "optimal" and solution["objective"] == pytest.approx(4100.0)
    assert solution["variables"] == {"make": {"table": 30.0, "chair": 40.0}}
    assert (tmp_path / "model.mps").read_text().count("make_") >= 2
    # A model's own solve and output (told not to, small models add them) are dropped: the ending solves.
    own = scenario.RIGHT + "prob.solve(pulp.CBC())\njson.dump({'status': 'Optimal'}, open('solution.json', 'w'))\n"
    code, output = _run(tmp_path, own, ["make"], data)
    assert code == 0, output
    assert json.loads((tmp_path / "solution.json").read_text())["status"] == "optimal"
    assert "# (dropped: the ending solves) prob.solve(pulp.CBC())" in (tmp_path / "model.py").read_text()
    # Written again from its own output (a model that echoes the whole file back), the ending is not doubled.
    again = with_ending((tmp_path / "model.py").read_text(), ["make"])
    assert again.count("fixed ending, added by") == 1


def test_the_ending_nests_tuple_keys_and_names_what_is_missing(tmp_path: Path) -> None:
    body = (
        "import pulp\nprob = pulp.LpProblem('t', pulp.LpMinimize)\n"
        "ship = {(i, j): pulp.LpVariable(f'ship_{i}_{j}', lowBound=0) for i in ['a', 'b'] for j in [1, 2]}\n"
        "prob += pulp.lpSum(ship.values())\nprob += ship[('a', 1)] + ship[('b', 2)] >= 3, 'need'\n"
    )
    code, output = _run(tmp_path, body, ["ship"], {})
    assert code == 0, output
    solution = json.loads((tmp_path / "solution.json").read_text())
    assert set(solution["variables"]["ship"]) == {"a", "b"} and set(solution["variables"]["ship"]["a"]) == {"1", "2"}
    assert solution["columns"]["ship_a_1"] == "ship[a,1]" and solution["objective"] == pytest.approx(3.0)
    code, output = _run(tmp_path, body, ["ship", "open"], {})
    assert code != 0 and "no variable `open`" in output
    code, output = _run(tmp_path, "import pulp\ndef main():\n    prob = pulp.LpProblem('t')\n", ["x"], {})
    assert code != 0 and "no pulp.LpProblem at the top level" in output


def _data() -> dict[str, object]:
    from nemo_opt.spec import data_from_spec

    return dict(data_from_spec(ProblemSpec.model_validate(SPEC)))


def test_numbers_are_read_as_stated_with_percentages_and_small_words() -> None:
    assert numbers_in_text("Costs 1,200.50 dollars, 20% off, for three weeks of 8 hours.") == [1200.5, 20, 0.2, 8, 3]


def test_tracing_flags_invented_and_missing_numbers_but_accepts_stated_rules() -> None:
    text = (REPO / "examples" / "product_mix.md").read_text()
    assert trace_numbers(ProblemSpec.model_validate(SPEC), text).clean
    wrong = json.loads(json.dumps(SPEC))
    wrong["parameters"][0]["value"] = {"table": 70, "chair": 30}  # 30 is not in the text
    wrong["parameters"][1]["value"] = {"table": 4, "chair": 4}  # a chair's 3 carpentry hours are gone
    trace = trace_numbers(ProblemSpec.model_validate(wrong), text)
    assert [(i["parameter"], i["key"], i["value"]) for i in trace.invented] == [("profit", "[chair]", 30.0)]
    assert trace.missing == [50.0, 3.0]
    assert "profit[chair] = 30" in trace.message() and "does not hold: 50, 3" in trace.message()
    # Derived by a stated rule: 8 hours x 5 days = 40, 15% = 0.15.
    derived = json.loads(json.dumps(SPEC))
    derived["parameters"].append({"name": "week_hours", "value": 40})
    derived["parameters"].append({"name": "rate", "value": 0.15})
    extra = text + " Staff work 8 hours a day, 5 days a week; 15% of chairs need repainting."
    assert trace_numbers(ProblemSpec.model_validate(derived), extra).invented == []


def test_a_bound_the_text_never_states_is_left_out_of_the_optimizer_skeleton(tmp_path: Path) -> None:
    """NL4OPT item 11: P* bounded the cars by 16, a number the text never states; the skeleton declared it and
    every optimizer kept it. Stated bounds (and 0, 1) stay; the one left out is named in the skeleton."""
    from nemo_opt.stages.context import pulp_skeleton
    from nemo_opt.stages.trace import untraced_bounds

    text = (
        "A bike can take 3 people while a car can take 5 people. At most 40% of the vehicles can be cars. "
        "The village needs to transport at least 500 people; at least 20 bikes are available."
    )
    spec = ProblemSpec.model_validate(
        {
            "variables": [
                {"name": "bikes", "type": "integer", "lower": 20, "upper": 500},
                {"name": "cars", "type": "integer", "lower": 0, "upper": 16},
            ],
            "objective": {"sense": "minimize", "expression": "bikes"},
        }
    )
    found = untraced_bounds(spec, text)
    assert found == [{"variable": "cars", "bound": "upper", "value": 16.0}]
    skeleton = pulp_skeleton(spec, found)
    assert 'pulp.LpVariable("cars", lowBound=0, cat="Integer")' in skeleton
    assert 'pulp.LpVariable("bikes", lowBound=20, upBound=500, cat="Integer")' in skeleton
    assert "the upper bound 16 on cars is not in the problem text: left out" in skeleton
    assert "upBound=16" in pulp_skeleton(spec)  # nothing is left out unless the trace says so


def test_the_tests_header_replaces_the_models_own_imports_of_the_simulator() -> None:
    from nemo_opt.stages.context import TESTS_HEADER, with_tests_header

    body = "from .simulate import simulate\nimport pytest\n\ndef test_x():\n    assert simulate({}, DATA)\n"
    fixed = with_tests_header(body)
    assert fixed.startswith(TESTS_HEADER) and "# (the header imports simulate) from .simulate import" in fixed
    assert "import pytest" in fixed and with_tests_header(fixed) == fixed


def test_numbers_that_name_things_are_not_missing() -> None:
    text = "Machine 2 and Machine 3 make bolts. Machine 2 makes 40 bolts an hour, Machine 3 makes 30. Year 2024."
    spec = ProblemSpec.model_validate(
        {
            "sets": [{"name": "machines", "elements": ["M2", "M3"]}],
            "parameters": [{"name": "rate", "indices": ["machines"], "value": {"M2": 40, "M3": 30}}],
            "variables": [{"name": "hours", "indices": ["machines"]}],
            "objective": {"sense": "maximize", "expression": "sum(rate[m] * hours[m] for m in machines)"},
        }
    )
    assert trace_numbers(spec, text).clean
    assert trace_numbers(spec, text + " They run 8 hours.").missing == [8.0]


def test_only_code_that_reads_p_stars_numbers_shares_them() -> None:
    from nemo_opt.stages.agents import _reads_parameters

    spec = ProblemSpec.model_validate(SPEC)
    assert _reads_parameters('used = sum(data["carpentry_hours"][p] * make[p] for p in data["products"])', spec)
    assert _reads_parameters("cap = data.get('finishing_available', 100)", spec)
    # Numbers from the text, data.json only for the index set: nothing shared with the other side.
    assert not _reads_parameters('used = 4 * make["table"] + 3 * make["chair"]  # for p in data["products"]', spec)


@pytest.mark.parametrize(
    "code",
    [
        "def simulate(sol,\n  data,\n  tol=(1e-6)) -> dict:\n  at_most('x', sol['x'], 1, ['x'])\n"
        "  return {'feasible': not violations}\n",
        "def simulate(solution, data):\n\tat_most('x', value('x'), 1, ['x'])\n\treturn {'feasible': not violations}\n",
    ],
)
def test_the_helpers_fit_the_agents_own_signature_and_indentation(code: str) -> None:
    from nemo_opt.stages.context import with_simulator_helpers

    namespace: dict[str, object] = {}
    exec(compile(with_simulator_helpers(code), "simulator.py", "exec"), namespace)  # noqa: S102 - the test's own
    simulate = namespace["simulate"]
    assert simulate({"x": 2.0}, {}) == {"feasible": False}  # type: ignore[operator]
    assert simulate({"x": 1.0000000001}, {}) == {"feasible": True}  # type: ignore[operator]


def test_a_signature_the_helpers_cannot_place_leaves_the_file_as_it_is() -> None:
    from nemo_opt.stages.context import with_simulator_helpers

    for code in ("def simulate(" + ")->" * 20000 + "\n", "def simulate(" + "(" * 20000 + "\n", "x = 1\n"):
        assert with_simulator_helpers(code) == code  # and at once: the signature pattern runs in linear time
