"""Where each benchmark's public release lives, and how its source format becomes this project's JSONL records.

Every source is pinned to a commit, so a download reproduces the same records as long as the repository exists.
A converter reads the files it needs through a :class:`SourceReader` (which knows the repository, the commit and
how to reach them) and returns records ``{"id", "benchmark", "question", "answer", "answer_raw", "extra"}``:

- ``id`` is ``<benchmark>-<0-based position, 4 digits>`` (ComplexOR: ``complexor-<problem folder>``);
- ``answer`` is the gold optimum as a float, or ``None`` when the source marks the item as having none
  ("No Best Solution", "Infeasible", the ``-99999`` sentinel, an empty solution); ``extra.answer_note`` says why;
- ``answer_raw`` is the gold exactly as in the source (strings kept, numbers JSON-encoded);
- ``extra`` keeps the rest of the source record plus ``version``, and ``answer_suspect`` when |gold| >= 1e20.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from nemo_opt.exceptions import RunFailure

__all__ = ["SOURCES", "Source", "SourceReader", "parse_gold"]

_T = TypeVar("_T")
_R = TypeVar("_R")

SUSPECT_NOTE = "abs(answer) >= 1e20: gold looks unbounded/garbage"
_SENTINEL = -99999.0
_MARKED_NONE = {"no best solution", "infeasible"}
_SOLVER_IMPORT = re.compile(r"^\s*(?:from|import)\s+(pyscipopt|pulp|gurobipy|coptpy)\b", re.MULTILINE)
_COMPLEXOR_DATA = "\n\nThe following data is included in this problem (JSON):\n"


class SourceReader(Protocol):
    """Read access to one repository at one commit (implemented over HTTP by :mod:`nemo_opt.bench.download`)."""

    def url(self, path: str) -> str:
        """The URL a path is fetched from, for messages."""
        ...

    def read(self, path: str) -> bytes:
        """The file's bytes; a missing file is an error naming the URL."""
        ...

    def read_optional(self, path: str) -> bytes | None:
        """The file's bytes, or ``None`` when the file does not exist at this commit."""
        ...

    def list_dir(self, path: str) -> list[tuple[str, str]]:
        """``(name, type)`` of the entries of a folder; ``type`` is ``"dir"`` or ``"file"`` (GitHub's terms)."""
        ...

    def at(self, repo: str, commit: str) -> SourceReader:
        """A reader for another repository or commit, over the same connection settings."""
        ...

    def map(self, fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        """``[fn(item) for item in items]``, possibly concurrently (for sources made of many small files)."""
        ...


@dataclass(frozen=True)
class Source:
    """One benchmark release: where it is, under which licence, and how to convert it.

    ``paths`` describes the files read, for the manifest: folder patterns such as ``<i>/{a,b}`` stand for many
    files, and ``path@commit`` marks a file read at another commit than ``commit``.
    """

    name: str
    benchmark: str
    repo: str
    commit: str
    paths: tuple[str, ...]
    licence: str
    convert: Callable[[SourceReader], list[dict[str, Any]]]
    kind: str = "standard"
    role: str = "standard"


# ---------------------------------------------------------------------------------------------- gold answers


def _parse(value: Any) -> tuple[float | None, str | None]:
    if value is None:
        return None, "no gold in the source"
    if isinstance(value, bool):
        return None, f"gold is not a number: {value!r}"
    if isinstance(value, list):
        if len(value) != 1:
            return None, f"gold is a list of {len(value)} values, not one number"
        number, note = _parse(value[0])
        return number, note if number is None else "one-element list unwrapped"
    if isinstance(value, int | float):
        number = float(value)
        note = None
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None, "empty gold"
        if text.lower() in _MARKED_NONE:
            return None, f"marked: {text}"
        if text.startswith("[") and text.endswith("]"):
            try:
                return _parse(json.loads(text))
            except ValueError:
                return None, f"gold is not a number: {text[:60]!r}"
        cleaned = text.replace(",", "").replace("$", "")
        try:
            number = float(cleaned)
        except ValueError:
            return None, f"gold is not a number: {text[:60]!r}"
        note = "thousands separators / '$' removed" if cleaned != text else None
    else:
        return None, f"gold is not a number: {type(value).__name__}"
    if math.isnan(number) or math.isinf(number):
        return None, f"gold is {number}"
    if number == _SENTINEL:
        return None, "sentinel -99999 (no feasible/optimal answer)"
    return number, note


def parse_gold(value: Any) -> tuple[float | None, str | None, str | None]:
    """``(answer, answer_raw, note)`` of a gold value as found in a source.

    Numbers and numeric strings become floats (``$`` and thousands separators dropped, a one-element list
    unwrapped); ``-99999`` (ORLM's "no answer" sentinel), "No Best Solution", "Infeasible" and empty values become
    ``None`` with a note saying why. ``answer_raw`` keeps strings as they are and JSON-encodes anything else.
    """
    raw = None if value is None else value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    answer, note = _parse(value)
    return answer, raw, note


def _record(
    item_id: str, benchmark: str, question: str, gold: Any, extra: dict[str, Any], note: str | None = None
) -> dict[str, Any]:
    answer, raw, parse_note = parse_gold(gold)
    if answer is None:
        extra["answer_note"] = note or parse_note
    elif parse_note:
        extra["answer_note"] = parse_note
    if answer is not None and abs(answer) >= 1e20:
        extra["answer_suspect"] = SUSPECT_NOTE
    return {
        "id": item_id,
        "benchmark": benchmark,
        "question": question,
        "answer": answer,
        "answer_raw": raw,
        "extra": extra,
    }


# ---------------------------------------------------------------------------------------------- reading helpers


def _decode(reader: SourceReader, path: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")  # -sig: a byte-order mark some editors add is not part of the text
    except UnicodeDecodeError as exc:
        raise RunFailure(f"{reader.url(path)} is not UTF-8 text ({exc}); the source may have changed.") from exc


def _json(reader: SourceReader, path: str, data: bytes | None = None) -> Any:
    text = _decode(reader, path, reader.read(path) if data is None else data)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunFailure(
            f"{reader.url(path)} is not valid JSON ({exc}); the file at the pinned commit is not in the expected "
            "format."
        ) from exc


def _json_optional(reader: SourceReader, path: str) -> tuple[bool, Any]:
    """(present, value): tells a missing file apart from a file holding ``null``."""
    data = reader.read_optional(path)
    return (False, None) if data is None else (True, _json(reader, path, data))


def _objects(reader: SourceReader, path: str) -> list[dict[str, Any]]:
    """The records of a file that is either one JSON array or JSON Lines (several sources name JSONL ``.json``)."""
    text = _decode(reader, path, reader.read(path))
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError:
        data = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                data.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise RunFailure(
                    f"{reader.url(path)} line {number} is not valid JSON ({exc.msg}); "
                    "the file at the pinned commit is neither a JSON array nor JSON Lines."
                ) from exc
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise RunFailure(f"{reader.url(path)} does not hold a list of JSON objects; the source format has changed.")
    if not data:
        raise RunFailure(f"{reader.url(path)} holds no records.")
    return data


def _field(reader: SourceReader, path: str, row: dict[str, Any], index: int, key: str) -> Any:
    if key not in row:
        raise RunFailure(
            f"Record {index} of {reader.url(path)} has no '{key}' (keys: {', '.join(row)}); the source format has "
            "changed, so this converter no longer applies."
        )
    return row[key]


def _rest(row: dict[str, Any], used: Iterable[str]) -> dict[str, Any]:
    """The source fields a converter did not map, under lower-case names (MAMO writes ``Category``)."""
    skip = set(used)
    return {key.lower(): value for key, value in row.items() if key not in skip}


def _flat(
    reader: SourceReader,
    benchmark: str,
    path: str,
    *,
    question_key: str,
    answer_key: str,
    id_key: str | None = None,
    version: str = "standard",
    strip: bool = False,
    first: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """Convert a file of one-object-per-problem records (question, gold, optional source id, other fields).

    ``first`` names extra fields to put ahead of the others, so the written lines match the prepared files byte
    for byte (and so their SHA-256).
    """
    records = []
    for index, row in enumerate(_objects(reader, path)):
        question = _field(reader, path, row, index, question_key)
        if not isinstance(question, str) or not question.strip():
            raise RunFailure(f"Record {index} of {reader.url(path)} has an empty '{question_key}'.")
        extra: dict[str, Any] = {"version": version}
        if id_key is not None and id_key in row:
            extra["source_id"] = row[id_key]
        else:
            extra["source_index"] = index
        rest = _rest(row, {question_key, answer_key, *([id_key] if id_key else [])})
        extra.update({key: rest.pop(key) for key in first if key in rest})
        extra.update(rest)
        gold = _field(reader, path, row, index, answer_key)
        text = question.strip() if strip else question
        records.append(_record(f"{benchmark}-{index:04d}", benchmark, text, gold, extra))
    return records


# ---------------------------------------------------------------------------------------------- converters


def _nl4opt(reader: SourceReader) -> list[dict[str, Any]]:
    return _flat(
        reader,
        "nl4opt",
        "data/datasets/NL4OPT_with_optimal_solution.json",
        question_key="en_question",
        answer_key="en_answer",
    )


def _bwor(reader: SourceReader) -> list[dict[str, Any]]:
    # The English texts start with a newline and indentation left over from the authors' editing; the Chinese
    # ones are kept verbatim in extra.
    return _flat(
        reader,
        "bwor",
        "data/datasets/BWOR.json",
        question_key="en_question",
        answer_key="en_answer",
        id_key="id",
        strip=True,
        first=("difficulty",),
    )


def _industryor(reader: SourceReader) -> list[dict[str, Any]]:
    return _flat(
        reader,
        "industryor",
        "static/datasets/IndustryOR/dataset.jsonl",
        question_key="en_question",
        answer_key="en_answer",
        version="standard_v1",
    )


def _mamo(benchmark: str, path: str) -> Callable[[SourceReader], list[dict[str, Any]]]:
    def convert(reader: SourceReader) -> list[dict[str, Any]]:
        return _flat(reader, benchmark, path, question_key="Question", answer_key="Answer", id_key="id")

    return convert


def _optmath(reader: SourceReader) -> list[dict[str, Any]]:
    return _flat(
        reader,
        "optmath_bench",
        "benchmark/OptMATH_Bench.json",
        question_key="en_question",
        answer_key="en_answer",
        id_key="id",
    )


_RESOCRATIC = "yangzhch6/ReSocratic"
# The 605 OptiBench problems with their reference programs, under the benchmark's earlier name E-OPT (same questions,
# same order); the file was removed from later commits, so it is read at the last commit that has it.
_EOPT_COMMIT = "8ba33b786a0271b448685089aa0267ac92ea8936"
_EOPT_PATH = "data/e-opt.json"


def _normalise(text: str) -> str:
    return " ".join(text.split())


def _optibench(reader: SourceReader) -> list[dict[str, Any]]:
    path = "data/OptiBench.json"
    rows = _objects(reader, path)
    programs = _objects(reader.at(_RESOCRATIC, _EOPT_COMMIT), _EOPT_PATH)
    # Position is the documented pairing; the question text is the fallback if the two files ever diverge in size.
    by_question = {_normalise(str(p.get("question", ""))): p for p in programs}
    records = []
    for index, row in enumerate(rows):
        question = _field(reader, path, row, index, "question")
        results = _field(reader, path, row, index, "results")
        if not isinstance(results, dict) or not results:
            raise RunFailure(f"Record {index} of {reader.url(path)} has no 'results' values to take the gold from.")
        # The objective is the last named value of "results" (variables first, objective last).
        objective_key = list(results)[-1]
        extra: dict[str, Any] = {"version": "standard", "source_index": row.get("index", index)}
        extra.update(_rest(row, {"question", "results", "index"}))
        extra["results"] = results
        extra["objective_key"] = objective_key
        program = programs[index] if len(programs) == len(rows) else by_question.get(_normalise(str(question)))
        if program is not None:
            code = program.get("code")
            extra["gold_code"] = code
            found = _SOLVER_IMPORT.search(code) if isinstance(code, str) else None
            extra["gold_code_solver"] = found.group(1) if found else None
            extra["gold_formulation"] = program.get("scenario", program.get("formulation"))
        records.append(_record(f"optibench-{index:04d}", "optibench", question, results[objective_key], extra))
    return records


def _text(reader: SourceReader, path: str) -> str:
    return _decode(reader, path, reader.read(path))


def _nlp4lp(reader: SourceReader) -> list[dict[str, Any]]:
    base = "static/datasets/NLP4LP"
    folders = sorted((name for name, kind in reader.list_dir(base) if kind == "dir" and name.isdigit()), key=int)
    if not folders:
        raise RunFailure(f"The listing of {reader.url(base)} holds no numbered problem folders.")

    def convert(item: tuple[int, str]) -> dict[str, Any]:
        index, name = item
        folder = f"{base}/{name}"
        question = _text(reader, f"{folder}/description.txt").strip()
        if not question:
            raise RunFailure(f"{reader.url(folder + '/description.txt')} is empty.")
        _, parameters = _json_optional(reader, f"{folder}/parameters.json")
        _, info = _json_optional(reader, f"{folder}/problem_info.json")
        has_solution, solution = _json_optional(reader, f"{folder}/solution.json")
        extra: dict[str, Any] = {
            "version": "standard",
            "source_index": int(name),
            "parameters": parameters,
            "parametrized_description": info.get("parametrized_description") if isinstance(info, dict) else None,
            "solution_variables": None,
        }
        gold: Any = None
        note = None
        if not has_solution:
            note = "no solution.json: no reference optimum"
        elif not solution:
            note = "solution.json empty ({}): no reference optimum"
        elif isinstance(solution, dict):
            extra["solution_variables"] = solution.get("variables")
            gold = solution.get("objective")
            note = None if "objective" in solution else "solution.json has no objective"
        else:
            note = "solution.json is not an object"
        return _record(f"nlp4lp-{index:04d}", "nlp4lp", question, gold, extra, note)

    return reader.map(convert, list(enumerate(folders)))


def _complexor(reader: SourceReader) -> list[dict[str, Any]]:
    base = "dataset/ComplexOR"
    names = sorted(name for name, kind in reader.list_dir(base) if kind == "dir")
    if not names:
        raise RunFailure(f"The listing of {reader.url(base)} holds no problem folders.")

    def convert(name: str) -> dict[str, Any]:
        folder = f"{base}/{name}"
        description = _text(reader, f"{folder}/description.txt").strip()
        samples = _json(reader, f"{folder}/sample.json")
        if not isinstance(samples, list) or not samples or not isinstance(samples[0], dict):
            raise RunFailure(f"{reader.url(folder + '/sample.json')} holds no samples.")
        first = samples[0]
        if "input" not in first or "output" not in first:
            raise RunFailure(f"The first sample of {reader.url(folder + '/sample.json')} lacks 'input' or 'output'.")
        # The problem text is generic; the instance is the first sample's data, so both make up the question.
        question = description + _COMPLEXOR_DATA + json.dumps(first["input"], ensure_ascii=False)
        output = first["output"]
        gold = output[0] if isinstance(output, list) and len(output) == 1 else output
        extra: dict[str, Any] = {"version": "standard", "name": name, "description": description, "samples": samples}
        model = reader.read_optional(f"{folder}/gt_model.txt")
        if model is not None:
            extra["gt_model"] = _decode(reader, f"{folder}/gt_model.txt", model)
        return _record(f"complexor-{name}", "complexor", question, gold, extra)

    return reader.map(convert, names)


# ---------------------------------------------------------------------------------------------- the releases

_OR_LLM_AGENT = ("bwz96sco/or_llm_agent", "dfcc0e79fbe0aea249bf339b919d6843a4807b7e")
_LLM4OR = ("LLM4OR/LLM4OR", "75962df5ddf531906fda76f8708c658114e63c0e")
_MAMO = ("FreedomIntelligence/Mamo", "2c91069dee5c1e4db4b899eb176ec987d0251bb3")
_MAMO_LICENCE = "CC BY-SA 4.0 (LICENSE in FreedomIntelligence/Mamo)"

SOURCES: dict[str, Source] = {
    source.name: source
    for source in (
        Source(
            "nl4opt",
            "nl4opt",
            *_OR_LLM_AGENT,
            ("data/datasets/NL4OPT_with_optimal_solution.json",),
            "NL4Opt competition data: MIT (nl4opt/nl4opt-competition); this copy carries no license file",
            _nl4opt,
        ),
        Source(
            "nlp4lp",
            "nlp4lp",
            *_LLM4OR,
            ("static/datasets/NLP4LP/<i>/{description.txt,solution.json,parameters.json,problem_info.json}",),
            "NLP4LP: CC BY-NC 4.0, research use only (per teshnizi/OptiMUS README); LLM4OR repo states no license",
            _nlp4lp,
        ),
        Source(
            "mamo_easy",
            "mamo_easy",
            *_MAMO,
            ("data/optimization/Easy_LP/mamo_easy_lp.jsonl",),
            _MAMO_LICENCE,
            _mamo("mamo_easy", "data/optimization/Easy_LP/mamo_easy_lp.jsonl"),
        ),
        Source(
            "mamo_complex",
            "mamo_complex",
            *_MAMO,
            ("data/optimization/Complex_LP/mamo_complex_lp.jsonl",),
            _MAMO_LICENCE,
            _mamo("mamo_complex", "data/optimization/Complex_LP/mamo_complex_lp.jsonl"),
        ),
        Source(
            "industryor",
            "industryor",
            *_LLM4OR,
            ("static/datasets/IndustryOR/dataset.jsonl",),
            "none stated in this copy (HF CardinalOperations/IndustryOR card not reachable here)",
            _industryor,
        ),
        Source(
            "optibench",
            "optibench",
            _RESOCRATIC,
            "56a638f689abbfd67650121cd4fdbe044e69e86c",
            ("data/OptiBench.json", f"{_EOPT_PATH}@{_EOPT_COMMIT}"),
            "repo: Apache-2.0",
            _optibench,
        ),
        Source(
            "optmath_bench",
            "optmath_bench",
            "optsuite/OptMATH",
            "f15bbc4477c70db85ad148df8bcc1b780bca0f8c",
            ("benchmark/OptMATH_Bench.json",),
            "repo: Apache-2.0",
            _optmath,
        ),
        Source(
            "complexor",
            "complexor",
            "xzymustbexzy/Chain-of-Experts",
            "9ce1fb7e522e930fe45100ce60661a4236514de6",
            ("dataset/ComplexOR/<name>/{description.txt,sample.json,gt_model.txt}",),
            "none stated in repo",
            _complexor,
        ),
        Source(
            "bwor",
            "bwor",
            *_OR_LLM_AGENT,
            ("data/datasets/BWOR.json",),
            "none stated in repo (HF SJTU/BWOR card not reachable here)",
            _bwor,
        ),
    )
}
