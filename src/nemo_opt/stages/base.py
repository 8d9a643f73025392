"""The stage contract, and the one run context every stage receives.

A run is a fixed sequence of stages (see :data:`nemo_opt.pipeline.STAGES`). Each stage is a small object with

- ``name``: what the run folder, the run store and the progress lines call it;
- ``inputs(ctx)``: the run-folder files its result depends on. Their content hash is recorded when the stage
  finishes, so a later resume loads the stage only while those files are unchanged; a changed input (an edited
  ``spec.json``, a repaired memory checkpoint) runs that stage and every stage after it again;
- ``run(ctx, detail)``: compute, write the stage's artifacts into the run folder, put its results on ``ctx``,
  and fill ``detail`` (what the store and the progress line show; ``detail["message"]`` is the line);
- ``load(ctx)``: put the results of a finished run of the stage back on ``ctx`` from its artifacts;
- ``reset(ctx)``: set aside partial work of an earlier attempt made with different inputs (most stages have none);
- ``needs_model``: whether the stage calls a model (such a stage does not start once the run's time is up).

Everything a stage needs comes from the :class:`RunContext`: the settings, the workspace, the sandbox, the
recorder every model call goes through, the event sink, and the results of the stages before it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from nemo_opt.llm.base import LLM
from nemo_opt.llm.recorder import RecordedLLM
from nemo_opt.result import Event, RunResult, StageTiming
from nemo_opt.settings import Settings
from nemo_opt.store import RunStore
from nemo_opt.workspace import Workspace

if TYPE_CHECKING:
    from nemo_opt.sandbox.base import WorkspaceSandbox
    from nemo_opt.spec import ProblemSpec
    from nemo_opt.stages.consensus import Consensus
    from nemo_opt.stages.optimize import OptimizerOutcome
    from nemo_opt.stages.recommend import Recommendation
    from nemo_opt.stages.referee import Referee
    from nemo_opt.stages.retrieve import Retrieval

__all__ = ["BaseStage", "EventSink", "RunContext", "Stage"]

EventSink = Callable[[Event], None]
Role = str  # "extract", "judge", "recommend", "simulator" or "optimizer": which model setting applies


@dataclass
class RunContext:
    """One run: what every stage reads, and the results the stages leave for the ones after them."""

    settings: Settings
    workspace: Workspace
    store: RunStore
    recorder: RecordedLLM
    problem: str
    run_id: str
    result: RunResult
    package_dir: Path
    item_id: str | None
    on_event: EventSink
    # The model for a role, guarded by the run's deadline and the per-model concurrency bound.
    model: Callable[[Role], LLM]
    remaining_seconds: Callable[[], float | None]
    # Set on Ctrl-C or SIGTERM while agents work in other threads: none of them starts another model call.
    interrupted: threading.Event = field(default_factory=threading.Event)
    timings: list[StageTiming] = field(default_factory=list)
    # The content hash of the declared inputs of the stage being loaded or run (set by the pipeline).
    inputs_digest: str = ""

    # --- left by the stages, in order -------------------------------------------------------------------------
    retrieval: Retrieval | None = None
    spec: ProblemSpec | None = None
    recommendation: Recommendation | None = None
    sandbox: WorkspaceSandbox | None = None
    referee: Referee | None = None
    outcomes: list[OptimizerOutcome] = field(default_factory=list)
    consensus: Consensus | None = None

    def llm(self, stage: str, role: Role | None = None) -> RecordedLLM:
        """The recorded model for ``stage`` (its calls are logged under that name), using ``role``'s model."""
        return self.recorder.for_stage(stage, self.model(role or stage))

    def emit(self, source: str, kind: str, message: str = "") -> None:
        self.on_event(Event(source, kind, message))  # type: ignore[arg-type]

    # Typed access to earlier stages' results (a stage that runs before its inputs exist is a defect).
    def need_spec(self) -> ProblemSpec:
        assert self.spec is not None, "the extract stage has not run"
        return self.spec

    def need_recommendation(self) -> Recommendation:
        assert self.recommendation is not None, "the recommend stage has not run"
        return self.recommendation

    def need_referee(self) -> Referee:
        assert self.referee is not None, "the agents stage has not run"
        return self.referee

    def need_consensus(self) -> Consensus:
        assert self.consensus is not None, "the consensus stage has not run"
        return self.consensus


class Stage(Protocol):
    """One step of the pipeline (see the module docstring)."""

    name: str
    needs_model: bool

    def inputs(self, ctx: RunContext) -> list[Path]:
        """Run-folder files whose content decides this stage's result."""
        ...

    def run(self, ctx: RunContext, detail: dict[str, Any]) -> None:
        """Compute the stage, write its artifacts, leave its results on ``ctx``."""
        ...

    def load(self, ctx: RunContext) -> bool:
        """Put a finished run's results back on ``ctx``; False when its artifacts are not all there."""
        ...

    def reset(self, ctx: RunContext) -> None:
        """Set aside partial work of an earlier attempt whose inputs differ from this one's."""
        ...


class BaseStage:
    """Defaults for stages: one that calls a model and has no partial work to set aside."""

    name = ""
    needs_model = True

    def reset(self, ctx: RunContext) -> None:
        """Nothing partial to set aside: the stage writes all of its artifacts again."""
