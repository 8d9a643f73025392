"""The seams between stages hold: agents and stages take any object with the LLM protocol, memory reaches the
extractor but never the judge, and a resumed run reruns exactly the stages whose inputs changed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nemo_opt import checkpoints
from nemo_opt.agent.base import Acceptance, AgentStatus, AgentTask
from nemo_opt.agent.loop import AgentLimits, ToolLoopAgent
from nemo_opt.llm.base import Completion, Message, ToolSpec
from nemo_opt.memory.store import Exemplar, Hit
from nemo_opt.pipeline import STAGES, Pipeline
from nemo_opt.result import Event
from nemo_opt.sandbox import make_sandbox
from nemo_opt.sandbox.base import Limits
from nemo_opt.settings import Settings
from nemo_opt.stages.extract import extract
from nemo_opt.stages.recommend import recommend
from nemo_opt.stages.retrieve import Retrieval
from nemo_opt.testing import Reply, RoleRouter, ScriptedLLM
from nemo_opt.workspace import Workspace
from tests.scenarios import EXTRACT, OPTIMIZER, SIMULATOR, call, product_mix, say, spec_reply

REPO = Path(__file__).resolve().parent.parent
PROBLEM = (REPO / "examples" / "product_mix.md").read_text()


class OnlyTheProtocol:
    """An LLM that is nothing but ``name`` and ``complete`` (no recorder, no templates, no cache)."""

    def __init__(self, replies: list[Reply]) -> None:
        self.name = "plain"
        self._inner = ScriptedLLM(replies)
        self.seen: list[list[Message]] = []

    def complete(
        self,
        messages: list[Message],
        *,
        tools: list[ToolSpec] | None = None,
        temperature: float = 0.0,
        n: int = 1,
        max_tokens: int | None = None,
    ) -> Completion:
        self.seen.append(list(messages))
        return self._inner.complete(messages, tools=tools, temperature=temperature, n=n, max_tokens=max_tokens)


def test_the_agent_loop_runs_on_a_plain_llm(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    ws.create()
    llm = OnlyTheProtocol([say("", call("bash", command="echo ok > done.txt")), say("", call("submit", summary="ok"))])
    agent = ToolLoopAgent(llm, make_sandbox("auto", ws.root, Limits(timeout=30)), ws, limits=AgentLimits())

    def accept() -> Acceptance:
        return Acceptance((ws.root / "done.txt").exists(), "done.txt is missing")

    result = agent.run(AgentTask("worker", "system prompt", "make done.txt", ws.root, accept, "done.txt exists"))
    assert result.status is AgentStatus.SUBMITTED and (ws.root / "done.txt").read_text() == "ok\n"
    assert len(llm.seen) == 2


def _hit(number: int) -> Hit:
    exemplar = Exemplar(
        id=f"ex{number}",
        source="test",
        question=f"EXAMPLE-QUESTION-{number}: a bakery decides how many loaves to bake.",
        code=f"# EXAMPLE-CODE-{number}\nimport pulp\n",
    )
    return Hit(exemplar, similarity=0.9, score=0.9)


def test_memory_shapes_the_extractions_but_the_judge_sees_the_problem_text_alone(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    ws.create()
    retrieval = Retrieval([_hit(1), _hit(2)], [ws.root / "memory" / "ex_1.py", ws.root / "memory" / "ex_2.py"])
    no_finishing = json.loads(json.dumps(product_mix.SPEC))
    no_finishing["constraints"] = no_finishing["constraints"][:1]
    extractor = OnlyTheProtocol([product_mix.EXTRACTION, spec_reply(no_finishing), product_mix.EXTRACTION])
    judge = OnlyTheProtocol([Reply('```json\n{"choice": "B", "reason": "complete"}\n```')])

    class Embedder:
        name = "bag-of-words"

        def embed(self, texts: list[str]) -> Any:
            import numpy as np

            vocabulary = sorted({w for t in texts for w in t.split()})
            rows = np.array([[t.split().count(w) for w in vocabulary] for t in texts], dtype=float)
            return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)

    result = extract(
        PROBLEM, extractor, ws, samples=3, embedder=Embedder(), judge=judge, memory=retrieval.extraction_note()
    )
    (extraction_prompt,) = extractor.seen
    text = extraction_prompt[0].content or ""
    assert "EXAMPLE-QUESTION-1" in text and "EXAMPLE-CODE-2" in text
    assert text.index("EXAMPLE-CODE-2") < text.index("Problem:")
    (judge_prompt,) = judge.seen
    judged = " ".join(m.content or "" for m in judge_prompt)
    assert "tables and chairs" in judged or "table" in judged
    assert "EXAMPLE" not in judged and "Solved examples" not in judged
    assert result.spec is not None


def test_recommend_takes_a_plain_llm_and_deals_only_capable_solvers() -> None:
    from nemo_opt.solvers.registry import available_solvers
    from nemo_opt.spec import ProblemSpec

    spec = ProblemSpec.model_validate(product_mix.SPEC)
    installed = available_solvers()
    rec = recommend(spec, installed, llm=OnlyTheProtocol([]))
    assert rec.capable and all(name in rec.ranking for name in rec.capable)
    for name in rec.dealt:
        backend = next(b for b in installed if b.name == name)
        assert backend.supports(rec.problem_class), f"{name} cannot solve {rec.problem_class}"


def test_optimizers_differ_by_temperature_examples_and_solver() -> None:
    from nemo_opt.stages.agents import variant

    retrieval = Retrieval([_hit(1), _hit(2), _hit(3)], [Path(f"memory/ex_{i}.py") for i in (1, 2, 3)])
    settings = Settings(optimizers=3)
    variants = [variant(k, settings, retrieval) for k in (1, 2, 3)]
    assert variants[0] == (0.0, [0, 1, 2])
    assert variants[1] == (settings.agent_temperature, [1, 2]) and variants[2] == (settings.agent_temperature, [0, 2])
    assert settings.agent_temperature > 0
    same = Settings(optimizers=3, optimizer_diversity=False)
    assert {variant(k, same, retrieval) for k in (1, 2, 3)} == {(same.agent_temperature, None)}


def _run(settings: Settings, events: list[Event] | None = None) -> Any:
    router = RoleRouter(
        {EXTRACT: [product_mix.EXTRACTION], SIMULATOR: product_mix.SIMULATOR, OPTIMIZER: product_mix.OPTIMIZER}
    )
    llm = ScriptedLLM(router)
    sink = events.append if events is not None else None
    return Pipeline(settings, llm_factory=lambda name: llm, on_event=sink), llm


def test_a_changed_input_reruns_its_stage_and_everything_after_it(settings: Settings) -> None:
    settings.model = "scripted:test"
    pipeline, _ = _run(settings)
    result = pipeline.solve(PROBLEM)
    assert result.verified, result.error
    ws = Workspace(result.folder)
    finished = checkpoints.finished_stages(ws)
    assert list(finished) == [stage.name for stage in STAGES]
    assert all(len(detail["inputs"]) == 64 for detail in finished.values())

    # Edit P* (a person correcting the extraction) and continue: extract is loaded, everything after it reruns.
    spec = json.loads((result.folder / "spec.json").read_text())
    spec["title"] = "Workshop plan, reviewed"
    next(p for p in spec["parameters"] if p["name"] == "min_chairs")["value"] = 12  # binds nothing at the optimum
    (result.folder / "spec.json").write_text(json.dumps(spec))
    (result.folder / "result.json").write_text(json.dumps({"error": "reopened for the test"}))
    outside = result.folder.parent / "outside"
    outside.mkdir()
    (result.folder / "superseded").symlink_to(outside)  # planted: the agents' work must not be moved out there
    events: list[Event] = []
    again, llm = _run(settings, events)
    resumed = again.resume(result.run_id)
    assert resumed.error is None and resumed.objective == result.objective
    # The text's 10 chairs is in no parameter now: simulator and model share the edited number, so the answer
    # stays below "verified" (the trace of P*'s numbers to the text).
    assert resumed.level == "objective-checked" and "does not hold: 10" in resumed.level_reason
    loaded = [e.stage for e in events if e.status == "info" and "loaded from the run folder" in e.message]
    ran = [e.stage for e in events if e.status == "started"]
    assert loaded == ["memory", "extract"] and ran == ["recommend", "agents", "consensus", "package"]
    assert not any(EXTRACT in json.dumps(r["messages"][:1]) for r in llm.requests)  # extraction was not redone
    assert any(e.stage == "agents" and "set aside" in e.message for e in events)
    assert json.loads((result.folder / "data.json").read_text())["min_chairs"] == 12
    assert json.loads((result.folder / "optimizers" / "opt_1" / "data.json").read_text())["min_chairs"] == 12
    superseded = result.folder / "superseded"
    assert superseded.is_dir() and not superseded.is_symlink() and list(outside.iterdir()) == []
    (moved,) = superseded.iterdir()
    assert (moved / "optimizers" / "opt_1" / "model.py").is_file()


def test_mbr_weights_name_real_components() -> None:
    import pytest

    from nemo_opt.exceptions import ConfigError
    from nemo_opt.settings import load_settings

    with pytest.raises(ConfigError, match="objectiv.*keys are decision_variables"):
        load_settings({"mbr_weights": {"objectiv": 2.0}})
    with pytest.raises(ConfigError, match="must not be negative"):
        load_settings({"mbr_weights": {"objective": -1.0}})
    assert load_settings({"mbr_weights": {"objective": 2.0}}).mbr_weights == {"objective": 2.0}


def _as_json(reply: Reply) -> dict[str, Any]:
    return {"text": reply.text, "tool_calls": [[name, args] for name, args in reply.tool_calls]}


def test_a_scripted_model_file_runs_the_pipeline_through_the_registry(settings: Settings, tmp_path: Path) -> None:
    script = tmp_path / "replies.json"
    routes = {
        EXTRACT: [_as_json(product_mix.EXTRACTION)],
        SIMULATOR: [_as_json(r) for r in product_mix.SIMULATOR],
        OPTIMIZER: [_as_json(r) for r in product_mix.OPTIMIZER],
    }
    script.write_text(json.dumps({"routes": routes}))
    settings.model = f"scripted:{script}"
    result = Pipeline(settings).solve(PROBLEM)  # no llm_factory: the registry builds the model from its name
    assert result.verified and result.objective == product_mix.EXPECTED_OBJECTIVE, result.error

    import pytest

    from nemo_opt.exceptions import ModelNotConfigured
    from nemo_opt.llm.registry import create_llm

    (tmp_path / "bad.json").write_text('[{"txt": "typo"}]')
    with pytest.raises(ModelNotConfigured, match="unknown key"):
        create_llm(f"scripted:{tmp_path / 'bad.json'}", settings)
    with pytest.raises(ModelNotConfigured, match="cannot be read"):
        create_llm(f"scripted:{tmp_path / 'missing.json'}", settings)


def test_both_sandbox_backends_hold_the_protocol_the_pipeline_uses(tmp_path: Path) -> None:
    from nemo_opt.sandbox.base import WorkspaceSandbox

    plain = make_sandbox("plain", tmp_path / "ws", Limits(timeout=10))
    assert isinstance(plain, WorkspaceSandbox) and isinstance(plain.scoped([tmp_path / "ws"]), WorkspaceSandbox)
    assert isinstance(plain.relocated(tmp_path / "other"), WorkspaceSandbox) and plain.describe_containment()


def test_stage_inputs_that_the_door_refuses_never_match_and_never_crash(tmp_path: Path) -> None:
    import os

    ws = Workspace(tmp_path / "ws")
    ws.create()
    (ws.root / "spec.json").write_text("{}")
    regular = checkpoints.inputs_digest(ws, [ws.spec])
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    (ws.root / "spec.json").unlink()
    (ws.root / "spec.json").symlink_to(outside)
    linked = checkpoints.inputs_digest(ws, [ws.spec])
    (ws.root / "spec.json").unlink()
    os.mkfifo(ws.root / "spec.json")
    fifo = checkpoints.inputs_digest(ws, [ws.spec])  # returns at once: a FIFO is never opened
    (ws.root / "spec.json").unlink()
    with (ws.root / "spec.json").open("wb") as handle:
        handle.truncate(300 * 1024 * 1024)  # past the door's read cap
    huge = checkpoints.inputs_digest(ws, [ws.spec])
    assert regular not in {linked, fifo, huge}  # each reruns the stage instead of loading it
