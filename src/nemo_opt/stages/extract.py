"""Extract P*: the model turns the description into a :class:`ProblemSpec`.

``n`` candidates are sampled in one request. Every candidate is kept under ``extract/`` in the workspace,
usable or not. A candidate whose JSON cannot be parsed or validated gets one repair round-trip with the error;
candidates still malformed after that are dropped and counted, which is not fatal while one remains.
With two or more usable candidates, component-wise MBR ranks them and an LLM judge that sees only the problem
text (never retrieved memory) picks among the top q; ``extract/mbr.json`` records utilities and the choice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from nemo_opt.embed.base import Embedder
from nemo_opt.exceptions import BadInput, ExtractionFailed
from nemo_opt.jsonparse import parse_json_object
from nemo_opt.llm.base import Message
from nemo_opt.llm.recorder import RecordedLLM
from nemo_opt.prompts import load_prompt
from nemo_opt.spec import ProblemSpec
from nemo_opt.stages.mbr import mbr_scores
from nemo_opt.workspace import Workspace

__all__ = ["Candidate", "ExtractionResult", "extract"]


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
    llm: RecordedLLM,
    workspace: Workspace,
    *,
    samples: int = 1,
    temperature: float = 0.7,
    embedder: Embedder | None = None,
    judge: RecordedLLM | None = None,
    top_q: int = 3,
    weights: dict[str, float] | None = None,
) -> ExtractionResult:
    """Sample ``samples`` extractions, repair malformed ones once, and choose one.

    Without an ``embedder`` (MBR switched off) the first usable candidate is taken.
    """
    prompt = load_prompt("extract")
    messages = [Message("user", prompt.render(problem=problem))]
    completion = llm.complete(messages, temperature=temperature if samples > 1 else 0.0, n=samples, template=prompt.ref)
    candidates: list[Candidate] = []
    for index, choice in enumerate(completion.choices):
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
    workspace.write_json(workspace.extract_dir / "mbr.json", selection)
    assert chosen.spec is not None
    return ExtractionResult(spec=chosen.spec, chosen=chosen.index, candidates=candidates, selection=selection)


def _select(
    problem: str,
    usable: list[Candidate],
    embedder: Embedder,
    judge: RecordedLLM,
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


def _judge(problem: str, finalists: list[Candidate], judge: RecordedLLM) -> tuple[Candidate, str, str]:
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
    raw = judge.complete([Message("user", text)], temperature=0.0, template=prompt.ref).first.text
    try:
        verdict = parse_json_object(raw)
        letter = str(verdict.get("choice", "")).strip().upper()[:1]
        return finalists[letters.index(letter)], str(verdict.get("reason", "")), raw
    except (ValueError, AttributeError):
        return finalists[0], "the judge's reply named no candidate; kept the highest MBR utility", raw


def _repair(candidate: Candidate, messages: list[Message], llm: RecordedLLM) -> None:
    """One round-trip: show the model its reply and the error, and parse the corrected reply."""
    prompt = load_prompt("extract_repair")
    conversation = [
        *messages,
        Message("assistant", candidate.raw),
        Message("user", prompt.render(error=candidate.error)),
    ]
    reply = llm.complete(conversation, temperature=0.0, template=prompt.ref).first.text
    spec, error, no_decision = _parse(reply)
    candidate.repaired = True
    candidate.raw = f"{candidate.raw}\n\n--- repaired reply ---\n{reply}"
    candidate.spec, candidate.no_decision = spec, no_decision
    candidate.error = error if spec is None and not no_decision else ""
