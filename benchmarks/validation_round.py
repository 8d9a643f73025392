"""What one validation round costs: the frozen, isolated referee against judging in the live workspace.

One round is what the pipeline does after an optimizer submits: read its solution, run the simulator on it,
and (the solution being right) read the exported model and run the feasible-region cross-check's probes. The
product-mix scenario of the test suite provides the simulator, the model and its solution; the sandbox, HiGHS
and the simulator run for real. The figure is the median of ``--rounds`` rounds (after one warm-up).

    python benchmarks/validation_round.py --rounds 20 --sandbox bwrap

It measures the code it is run with: run it once on a checkout from before the referee existed (where
``validate`` took the sandbox and judged the live workspace) and once on today's, and compare the medians.
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nemo_opt.sandbox import make_sandbox  # noqa: E402
from nemo_opt.sandbox.base import Limits  # noqa: E402
from nemo_opt.spec import ProblemSpec, data_from_spec  # noqa: E402
from nemo_opt.stages import validate as validation  # noqa: E402
from nemo_opt.workspace import Workspace  # noqa: E402
from tests.scenarios import product_mix  # noqa: E402


def _workspace(folder: Path, spec: ProblemSpec) -> Workspace:
    ws = Workspace(folder)
    if hasattr(product_mix, "write_workspace"):
        product_mix.write_workspace(ws)
    else:  # a checkout from before the shared builder
        ws.create()
        ws.write_json("data.json", data_from_spec(spec))
        ws.write_text("simulator/__init__.py", "")
        ws.write_text("simulator/simulator.py", product_mix.SIMULATOR_CODE)
        ws.write_text("simulator/test_simulator.py", product_mix.SIMULATOR_TESTS)
    opt = ws.root / "optimizers" / "opt_1"
    opt.mkdir(parents=True)
    (opt / "data.json").write_text(json.dumps(data_from_spec(spec)))
    (opt / "model.py").write_text(product_mix.RIGHT_MODEL)
    subprocess.run([sys.executable, "model.py"], cwd=opt, check=True, capture_output=True)
    return ws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--sandbox", default="auto", choices=["auto", "bwrap", "plain"])
    parser.add_argument("--probes", type=int, default=24, help="cross-check probes per round (0: objective only)")
    args = parser.parse_args()
    spec = ProblemSpec.model_validate(product_mix.SPEC)
    with tempfile.TemporaryDirectory() as tmp:
        ws = _workspace(Path(tmp) / "run", spec)
        sandbox = make_sandbox(args.sandbox, ws.root, Limits(timeout=120))
        solution = ws.root / "optimizers" / "opt_1" / "solution.json"
        frozen = "referee" in inspect.signature(validation.validate).parameters
        judge: object = sandbox
        extra: dict[str, object] = {"timeout": 120}  # the live-workspace validate took the command timeout
        if frozen:
            from nemo_opt.stages.referee import Referee

            referee = Referee(ws, sandbox, data_from_spec(spec), timeout=120)
            candidate = referee.candidate()
            assert not isinstance(candidate, str), candidate
            referee.adopt(candidate)
            judge, extra = referee, {}

        def one(number: int) -> object:
            return validation.validate(
                spec,
                ws,
                judge,  # type: ignore[arg-type]
                solution,
                optimizer="o",
                round_number=number,
                atol=1e-6,
                rtol=1e-6,
                probes=args.probes,
                **extra,  # type: ignore[arg-type]
            )

        first = one(0)
        assert getattr(first, "passed", False), first
        seconds = []
        for number in range(1, args.rounds + 1):
            started = time.perf_counter()
            report = one(number)
            seconds.append(time.perf_counter() - started)
            assert getattr(report, "passed", False)
    level = getattr(first, "level", "(no levels)")
    print(
        f"{'frozen referee' if frozen else 'live workspace'} ({sandbox.name}, {args.probes} probes): "
        f"median {statistics.median(seconds):.3f} s, min {min(seconds):.3f} s, max {max(seconds):.3f} s over "
        f"{len(seconds)} rounds; level of the first: {level}"
    )


if __name__ == "__main__":
    main()
