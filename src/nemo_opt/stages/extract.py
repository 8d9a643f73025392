"""Extract P*: the model turns the description into a :class:`ProblemSpec`.

``n`` candidates are sampled in one request. Every candidate is kept under ``extract/`` in the workspace,
usable or not. A candidate whose JSON cannot be parsed or validated gets one repair round-trip with the error;
candidates still malformed after that are dropped and counted, which is not fatal while one remains.
With two or more usable candidates, component-wise MBR ranks them and an LLM judge that sees only the problem
text (never retrieved memory) picks among the top q; ``extract/mbr.json`` records utilities and the choice.

Retrieved examples (``memory_extract``) shape the candidates: the extraction prompt shows them. That is why the
judge sees D alone: it corrects for what the examples may have pulled the candidates towards.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nemo_opt.embed import make_embedder
from nemo_opt.embed.base import Embedder
from nemo_opt.exceptions import BadInput, ExtractionFailed
from nemo_opt.jsonparse import parse_json_object
from nemo_opt.llm.base import LLM, Message
from nemo_opt.llm.recorder import labelled
from nemo_opt.prompts import load_prompt
from nemo_opt.spec import ProblemSpec, data_from_spec
from nemo_opt.stages.base import BaseStage, RunContext
from nemo_opt.stages.mbr import mbr_scores
from nemo_opt.stages.trace import repair_request, trace_numbers, untraced_bounds
from nemo_opt.workspace import Workspace

__all__ = ["Candidate", "ExtractStage", "ExtractionResult", "extract"]


@dataclass
class Candidate:
    """One sampled extraction: the raw reply, and either a spec or the reason it was dropped."""

    index: int
    raw: str
    spec: ProblemSpec | None = None
    error: str = ""
    repaired: bool = False
    no_decision: str = ""


@dataclass
class ExtractionResult:
    """The chosen spec plus every candidate, and how the choice was made."""

    spec: ProblemSpec
    chosen: int
    candidates: list[Candidate] = field(default_factory=list)
    selection: dict[str, Any] = field(default_factory=dict)

    @property
    def dropped(self) -> int:
        return sum(1 for c in self.candidates if c.spec is None)


def _validation_message(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors()[:12]:
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"- {where}: {err['msg']}")
    return "\n".join(lines)


def _parse(raw: str) -> tuple[ProblemSpec | None, str, str]:
    """(spec, error, no_decision_reason) for one reply."""
    try:
        data: dict[str, Any] = parse_json_object(raw)
    except ValueError as exc:
        return None, str(exc), ""
    if data.get("error") == "no_decision":
        return None, "", str(data.get("reason") or "the text states no decision to optimize")
    try:
        return ProblemSpec.model_validate(data), "", ""
    except ValidationError as exc:
        return None, "the JSON does not match the required shape:\n" + _validation_message(exc), ""


def extract(
    problem: str,
    llm: LLM,
    workspace: Workspace,
    *,
    samples: int = 1,
    temperature: float = 0.7,
    embedder: Embedder | None = None,
    judge: LLM | None = None,
    top_q: int = 3,
    weights: dict[str, float] | None = None,
    memory: str = "",
    trace_repair: bool = False,
    retry: bool = False,
) -> ExtractionResult:
    """Sample ``samples`` extractions, repair malformed ones once, and choose one.

    ``memory`` is the retrieved examples' text for the extraction prompt (the judge never gets it). Without an
    ``embedder`` (MBR switched off) the first usable candidate is taken. With ``trace_repair``, a chosen P*
    whose numbers do not trace to the text (see :mod:`nemo_opt.stages.trace`) gets one repair round, kept
    only when it traces better. With ``retry``, when no candidate is usable after its repair, one fresh sample
    (temperature 0.5) and its repair are tried before giving up.
    """
    prompt = load_prompt("extract")
    messages = [Message("user", prompt.render(problem=problem, memory=memory))]
    completion = labelled(llm, prompt.ref).complete(
        messages, temperature=temperature if samples > 1 else 0.0, n=samples
    )
    candidates: list[Candidate] = []
    choices = list(completion.choices)
    for index, choice in enumerate(choices):
        spec, error, no_decision = _parse(choice.text)
        candidate = Candidate(index, choice.text, spec, error, no_decision=no_decision)
        if spec is None and error:
            _repair(candidate, messages, llm)
        candidates.append(candidate)
        workspace.write_json(
            workspace.extract_dir / f"candidate_{index}.json",
            {
                "raw": candidate.raw,
                "spec": candidate.spec.model_dump(mode="json") if candidate.spec else None,
                "error": candidate.error,
                "repaired": candidate.repaired,
                "no_decision": candidate.no_decision,
            },
        )
        if index == len(choices) - 1 and retry and not any(c.spec is not None or c.no_decision for c in candidates):
            retry = False  # once: a fresh sample, since a repair of a small model's reply often repeats it
            choices += labelled(llm, prompt.ref).complete(messages, temperature=0.5).choices
    usable = [c for c in candidates if c.spec is not None]
    if not usable:
        reasons = [c.no_decision for c in candidates if c.no_decision]
        if reasons and len(reasons) * 2 >= len(candidates):
            raise BadInput(
                f"The description does not state a decision to optimize ({reasons[0]}). Describe what can be "
                "decided, what limits the choice, and what should be minimized or maximized."
            )
        details = "; ".join(f"candidate {c.index}: {c.error or c.no_decision}" for c in candidates)
        raise ExtractionFailed(
            f"No usable problem specification came out of {len(candidates)} extraction(s): {details}. "
            f"The replies are kept in {workspace.rel(workspace.extract_dir)}/."
        )
    selection: dict[str, Any] = {
        "method": "first usable",
        "candidates": len(candidates),
        "dropped": len(candidates) - len(usable),
    }
    chosen = usable[0]
    if len(usable) > 1 and embedder is not None:
        chosen, selection = _select(problem, usable, embedder, judge or llm, top_q, weights, selection)
    assert chosen.spec is not None
    if trace_repair:
        _trace_repair(problem, chosen, messages, llm, selection)
        assert chosen.spec is not None
    workspace.write_json(workspace.extract_dir / "mbr.json", selection)
    return ExtractionResult(spec=chosen.spec, chosen=chosen.index, candidates=candidates, selection=selection)


def _select(
    problem: str,
    usable: list[Candidate],
    embedder: Embedder,
    judge: LLM,
    top_q: int,
    weights: dict[str, float] | None,
    selection: dict[str, Any],
) -> tuple[Candidate, dict[str, Any]]:
    """Component-wise MBR ranking, then the judge among the top q."""
    specs = [c.spec for c in usable if c.spec is not None]
    scores = mbr_scores(specs, embedder, weights)
    ranked = [usable[i] for i in scores.ranking()]
    finalists = ranked[:top_q]
    selection.update(
        method="component-wise MBR + judge",
        embedder=embedder.name,
        utility={str(c.index): u for c, u in zip(usable, scores.utility, strict=True)},
        per_component={
            j: {str(c.index): s for c, s in zip(usable, v, strict=True)} for j, v in scores.per_component.items()
        },
        finalists=[c.index for c in finalists],
    )
    if len(finalists) == 1:
        selection.update(choice=finalists[0].index, reason="only one candidate after ranking")
        return finalists[0], selection
    choice, reason, raw = _judge(problem, finalists, judge)
    selection.update(choice=choice.index, reason=reason, judge_reply=raw)
    return choice, selection


def _judge(problem: str, finalists: list[Candidate], judge: LLM) -> tuple[Candidate, str, str]:
    """Ask the judge (problem text and candidates only) which finalist to keep; the top-ranked one if unclear."""
    prompt = load_prompt("judge")
    letters = [chr(ord("A") + i) for i in range(len(finalists))]
    blocks = []
    for letter, candidate in zip(letters, finalists, strict=True):
        assert candidate.spec is not None
        blocks.append(
            f"### Candidate {letter}\n```json\n{json.dumps(candidate.spec.model_dump(mode='json'), indent=1)}\n```"
        )
    text = prompt.render(problem=problem, candidates="\n\n".join(blocks))
    raw = labelled(judge, prompt.ref).complete([Message("user", text)], temperature=0.0).first.text
    try:
        verdict = parse_json_object(raw)
        letter = str(verdict.get("choice", "")).strip().upper()[:1]
        return finalists[letters.index(letter)], str(verdict.get("reason", "")), raw
    except (ValueError, AttributeError):
        return finalists[0], "the judge's reply named no candidate; kept the highest MBR utility", raw


REPAIR_TEMPERATURE = 0.4


def _repair(candidate: Candidate, messages: list[Message], llm: LLM) -> None:
    """One round-trip: show the model its reply and the error, and parse the corrected reply."""
    prompt = load_prompt("extract_repair")
    conversation = [
        *messages,
        Message("assistant", candidate.raw),
        Message("user", prompt.render(error=candidate.error)),
    ]
    # Sampled a little warm: at temperature 0 the 1.5B local model answered all four repair requests of the
    # NL4OPT items 10, 11 and of examples/product_mix.md with its first reply again, token for token.
    reply = labelled(llm, prompt.ref).complete(conversation, temperature=REPAIR_TEMPERATURE).first.text
    spec, error, no_decision = _parse(reply)
    candidate.repaired = True
    candidate.raw = f"{candidate.raw}\n\n--- repaired reply ---\n{reply}"
    candidate.spec, candidate.no_decision = spec, no_decision
    candidate.error = error if spec is None and not no_decision else ""


def _trace_repair(
    problem: str, chosen: Candidate, messages: list[Message], llm: LLM, selection: dict[str, Any]
) -> None:
    """One repair round for numbers of ``chosen`` that do not trace to the text; kept only if it traces better."""
    assert chosen.spec is not None
    before = trace_numbers(chosen.spec, problem)
    if before.clean:
        return
    trial = Candidate(chosen.index, chosen.raw, None, repair_request(before, problem))
    _repair(trial, messages, llm)
    after = trace_numbers(trial.spec, problem) if trial.spec is not None else None
    better = after is not None and len(after.missing) + len(after.invented) < len(before.missing) + len(before.invented)
    selection["trace_repair"] = {
        "before": before.as_dict(),
        "after": after.as_dict() if after is not None else None,
        "kept": better,
        "reply": trial.raw.split("--- repaired reply ---", 1)[-1],
    }
    if better:
        chosen.spec, chosen.raw = trial.spec, trial.raw


class ExtractStage(BaseStage):
    """D -> P*: ``spec.json`` and ``data.json`` (the parameters' values), with every candidate under ``extract/``."""

    name = "extract"

    def inputs(self, ctx: RunContext) -> list[Path]:
        memory = [ctx.workspace.checkpoints / "memory.json"] if ctx.settings.memory_extract else []
        return [ctx.workspace.problem, *memory]

    def run(self, ctx: RunContext, detail: dict[str, Any]) -> None:
        s, workspace = ctx.settings, ctx.workspace
        use_mbr = s.mbr and s.extractions > 1
        retrieval = ctx.retrieval
        extraction = extract(
            ctx.problem,
            ctx.llm("extract"),
            workspace,
            samples=s.extractions,
            temperature=s.extract_temperature,
            embedder=make_embedder(s) if use_mbr else None,
            judge=ctx.llm("judge") if use_mbr else None,
            top_q=s.mbr_top_q,
            weights=s.mbr_weights,
            memory=retrieval.extraction_note() if retrieval is not None and s.memory_extract else "",
            trace_repair=s.extract_trace_repair,
            retry=s.extract_retry,
        )
        spec = ctx.spec = extraction.spec
        workspace.write_json("spec.json", spec.model_dump(mode="json"))
        workspace.write_json(workspace.data, data_from_spec(spec))
        record = {
            "chosen": extraction.chosen,
            "candidates": len(extraction.candidates),
            "dropped": extraction.dropped,
            "method": extraction.selection.get("method"),
        }
        workspace.write_json(workspace.extract_dir / "extraction.json", record)
        trace = trace_numbers(spec, ctx.problem)
        bounds = untraced_bounds(spec, ctx.problem)  # left out of the optimizers' skeleton
        workspace.write_json(workspace.extract_dir / "trace.json", {**trace.as_dict(), "bounds": bounds})
        if not trace.clean:  # flagged before any agent sees P*; the whole-file agents are told the text wins
            ctx.emit("extract", "info", f"check the data: {trace.message()}")
        detail.update(chosen=extraction.chosen, dropped=extraction.dropped, method=record["method"])
        detail["untraced"] = {"invented": len(trace.invented), "missing": len(trace.missing)}
        detail["message"] = (
            f"{len(spec.variables)} variable group(s), {len(spec.constraints)} constraint group(s); "
            f"candidate {extraction.chosen} of {len(extraction.candidates)} ({record['method']})"
        )

    def load(self, ctx: RunContext) -> bool:
        if not ctx.workspace.exists("spec.json"):
            return False
        ctx.spec = ProblemSpec.model_validate(ctx.workspace.read_json("spec.json"))
        data = data_from_spec(ctx.spec)  # an edited spec.json carries its numbers into data.json
        if not ctx.workspace.exists(ctx.workspace.data) or ctx.workspace.read_json(ctx.workspace.data) != data:
            ctx.workspace.write_json(ctx.workspace.data, data)
        return True
