"""``nemo-opt bench download`` against a loopback HTTP server serving source files in each release's real format.

``tests/fixtures/bench_sources/<owner>/<repo>/<commit>/<path>`` mirrors the raw-file URLs; the server also answers
GitHub's contents API (``/repos/<owner>/<repo>/contents/<folder>?ref=<commit>``) from the same tree. The fixture
records are made up; the last test rebuilds source files from the prepared benchmark folder (when present) and
checks the converters give its records back.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from nemo_opt.bench import download as dl
from nemo_opt.bench.download import SOURCES, download, known_names
from nemo_opt.bench.sources import parse_gold
from nemo_opt.exceptions import BadInput, RunFailure
from tests.conftest import BENCHMARKS

FIXTURES = Path(__file__).parent / "fixtures" / "bench_sources"
STANDARD = [
    "nl4opt",
    "nlp4lp",
    "mamo_easy",
    "mamo_complex",
    "industryor",
    "optibench",
    "optmath_bench",
    "complexor",
    "bwor",
]


class _Server(ThreadingHTTPServer):
    root: Path
    requests: list[str]
    failures: dict[str, list[int]]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        queued = self.server.failures.get(path)
        if queued:
            self._send(queued.pop(0), b"temporarily unavailable")
            return
        listing = re.fullmatch(r"/repos/([^/]+)/([^/]+)/contents/(.+)", path)
        if listing:
            owner, repo, folder = listing.groups()
            ref = parse_qs(parts.query).get("ref", [""])[0]
            directory = self.server.root / owner / repo / ref / folder
            if not ref or not directory.is_dir():
                self._send(404, b'{"message": "Not Found"}')
                return
            entries = [
                {
                    "name": child.name,
                    "path": f"{folder}/{child.name}",
                    "type": "dir" if child.is_dir() else "file",
                    "size": 0 if child.is_dir() else child.stat().st_size,
                }
                for child in sorted(directory.iterdir())
            ]
            self._send(200, json.dumps(entries).encode())
            return
        file = self.server.root / path.lstrip("/")
        if not file.is_file():
            self._send(404, b"404: Not Found")
            return
        self._send(200, file.read_bytes())

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # keep the test output clean
        pass


@contextmanager
def serve(root: Path) -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.root, server.requests, server.failures = root, [], {}
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def url_of(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def downloaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path], list[str]]:
    """All nine standard releases downloaded once from the fixture server."""
    dest = tmp_path_factory.mktemp("benchmarks")
    with serve(FIXTURES) as server:
        written = download(known_names(), dest, base_url=url_of(server), timeout=10)
        return dest, written, list(server.requests)


def records(dest: Path, name: str) -> dict[str, dict[str, Any]]:
    return {record["id"]: record for record in read_jsonl(dest / f"{name}.jsonl")}


# ---------------------------------------------------------------------------------------------- the registry


def test_known_names_are_the_nine_standard_releases() -> None:
    assert known_names() == STANDARD
    for name, source in SOURCES.items():
        assert source.name == name and source.benchmark == name
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", source.repo)
        assert re.fullmatch(r"[0-9a-f]{40}", source.commit)
        assert source.paths and source.licence
        assert (source.kind, source.role) == ("standard", "standard")


def test_sources_match_the_prepared_manifest() -> None:
    manifest = BENCHMARKS / "manifest.json"
    if not manifest.exists():
        pytest.skip(f"no prepared benchmarks at {BENCHMARKS}")
    entries = {e["file"]: e for e in json.loads(manifest.read_text(encoding="utf-8"))}
    for name, source in SOURCES.items():
        entry = entries[f"{name}.jsonl"]
        assert (entry["source_repo"], entry["source_commit"]) == (source.repo, source.commit)
        assert entry["source_paths"][0] == source.paths[0]
        assert entry["license"] == source.licence


# ---------------------------------------------------------------------------------------------- a full download


def test_download_writes_every_release_and_the_manifest(downloaded: tuple[Path, list[Path], list[str]]) -> None:
    dest, written, _ = downloaded
    assert written == [dest / f"{name}.jsonl" for name in STANDARD]
    manifest = json.loads((dest / "manifest.json").read_text(encoding="utf-8"))
    assert [entry["file"] for entry in manifest] == [f"{name}.jsonl" for name in STANDARD]
    expected = {
        "nl4opt": (3, 1),
        "nlp4lp": (4, 2),
        "mamo_easy": (2, 2),
        "mamo_complex": (2, 2),
        "industryor": (3, 2),
        "optibench": (2, 2),
        "optmath_bench": (3, 3),
        "complexor": (2, 2),
        "bwor": (3, 2),
    }
    for entry in manifest:
        name = entry["file"].removesuffix(".jsonl")
        source = SOURCES[name]
        data = (dest / entry["file"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert (entry["count"], entry["with_answer"]) == expected[name]
        assert entry["count"] == len(read_jsonl(dest / entry["file"]))
        assert entry["benchmark"] == name and entry["kind"] == "standard" and entry["role"] == "standard"
        assert (entry["source_repo"], entry["source_commit"]) == (source.repo, source.commit)
        assert entry["source_paths"] == list(source.paths)
        assert entry["license"] == source.licence
    for name in STANDARD:
        for record in read_jsonl(dest / f"{name}.jsonl"):
            assert set(record) == {"id", "benchmark", "question", "answer", "answer_raw", "extra"}
            assert record["benchmark"] == name and record["question"].strip()


def test_files_are_fetched_at_the_pinned_commits(downloaded: tuple[Path, list[Path], list[str]]) -> None:
    _, _, requests = downloaded
    assert "/bwz96sco/or_llm_agent/dfcc0e79fbe0aea249bf339b919d6843a4807b7e/data/datasets/BWOR.json" in requests
    assert "/yangzhch6/ReSocratic/8ba33b786a0271b448685089aa0267ac92ea8936/data/e-opt.json" in requests
    listings = [r for r in requests if r.startswith("/repos/")]
    assert sorted(listings) == [
        "/repos/LLM4OR/LLM4OR/contents/static/datasets/NLP4LP?ref=75962df5ddf531906fda76f8708c658114e63c0e",
        "/repos/xzymustbexzy/Chain-of-Experts/contents/dataset/ComplexOR?ref=9ce1fb7e522e930fe45100ce60661a4236514de6",
    ]


def test_nl4opt_marks_no_best_solution_and_the_sentinel(downloaded: tuple[Path, list[Path], list[str]]) -> None:
    got = records(downloaded[0], "nl4opt")
    assert list(got) == ["nl4opt-0000", "nl4opt-0001", "nl4opt-0002"]
    assert got["nl4opt-0000"]["question"].startswith("A bakery makes cakes and pies.")
    assert (got["nl4opt-0000"]["answer"], got["nl4opt-0000"]["answer_raw"]) == (30.0, "30.0")
    assert got["nl4opt-0000"]["extra"] == {"version": "standard", "source_index": 0}
    assert (got["nl4opt-0001"]["answer"], got["nl4opt-0001"]["answer_raw"]) == (None, "No Best Solution")
    assert got["nl4opt-0001"]["extra"]["answer_note"] == "marked: No Best Solution"
    assert (got["nl4opt-0002"]["answer"], got["nl4opt-0002"]["answer_raw"]) == (None, "-99999")
    assert got["nl4opt-0002"]["extra"]["answer_note"] == "sentinel -99999 (no feasible/optimal answer)"


def test_bwor_strips_the_english_text_and_keeps_the_chinese(downloaded: tuple[Path, list[Path], list[str]]) -> None:
    got = records(downloaded[0], "bwor")
    first = got["bwor-0000"]
    assert first["question"].startswith("A workshop makes tables") and first["question"].endswith("maximize profit?")
    assert (first["answer"], first["answer_raw"]) == (3000.0, "3000")
    assert first["extra"] == {
        "version": "standard",
        "source_id": 0,
        "cn_question": "\n    某车间生产桌子和椅子。求利润最大的生产方案。\n",
        "difficulty": "Medium",
    }
    assert got["bwor-0001"]["answer"] == 32.43
    assert got["bwor-0002"]["answer"] is None
    assert got["bwor-0002"]["extra"]["answer_note"] == "marked: No Best Solution"


def test_industryor_v1(downloaded: tuple[Path, list[Path], list[str]]) -> None:
    got = records(downloaded[0], "industryor")
    assert got["industryor-0000"]["question"].startswith("A family chooses which of 4 children")
    assert "\n\nThey must take at least two children." in got["industryor-0000"]["question"]
    assert got["industryor-0000"]["extra"] == {
        "version": "standard_v1",
        "source_index": 0,
        "difficulty": "Easy",
        "question_type": "IP",
    }
    assert (got["industryor-0001"]["answer"], got["industryor-0001"]["answer_raw"]) == (180000.0, "180000")
    assert got["industryor-0002"]["answer"] is None
    assert got["industryor-0002"]["extra"]["answer_note"].startswith("sentinel -99999")


def test_nlp4lp_folders(downloaded: tuple[Path, list[Path], list[str]]) -> None:
    got = records(downloaded[0], "nlp4lp")
    # Folders sort numerically (10 after 2); files such as .DS_Store are not problems.
    assert [r["extra"]["source_index"] for r in got.values()] == [0, 1, 2, 10]
    first = got["nlp4lp-0000"]
    assert first["question"].startswith("A baker makes bread") and first["question"].endswith("maximize profit?")
    assert (first["answer"], first["answer_raw"]) == (110.0, "110.0")
    assert first["extra"]["parameters"]["FlourAvailable"] == 90
    assert first["extra"]["parametrized_description"].startswith("Maximize ProfitLoaf")
    assert first["extra"]["solution_variables"] == {"Loaves": 20.0, "Rolls": 30.0}
    empty = got["nlp4lp-0001"]
    assert (empty["answer"], empty["answer_raw"]) == (None, None)
    assert empty["extra"]["parametrized_description"] is None  # no problem_info.json in that folder
    assert empty["extra"]["answer_note"] == "solution.json empty ({}): no reference optimum"
    huge = got["nlp4lp-0002"]
    assert huge["answer"] == 4.0799999550000226e35 and huge["answer_raw"] == "4.0799999550000226e+35"
    assert huge["extra"]["answer_suspect"] == "abs(answer) >= 1e20: gold looks unbounded/garbage"
    assert got["nlp4lp-0003"]["answer"] is None
    assert got["nlp4lp-0003"]["extra"]["answer_note"] == "no solution.json: no reference optimum"


def test_mamo_easy_and_complex(downloaded: tuple[Path, list[Path], list[str]]) -> None:
    easy = records(downloaded[0], "mamo_easy")
    assert "\\n\\nWhat is the minimum cost" in easy["mamo_easy-0000"]["question"]  # literal \n kept as released
    assert (easy["mamo_easy-0000"]["answer"], easy["mamo_easy-0000"]["answer_raw"]) == (10000.0, "10000")
    assert easy["mamo_easy-0001"]["extra"] == {
        "version": "standard",
        "source_id": 2,
        "category": "optimization",
        "type": "easy_lp",
    }
    complex_ = records(downloaded[0], "mamo_complex")
    assert complex_["mamo_complex-0000"]["question"].endswith("What is the minimum cost? ")  # not stripped
    assert complex_["mamo_complex-0000"]["extra"]["type"] == "complex_lp"
    assert complex_["mamo_complex-0001"]["answer"] == 172666.667
    assert complex_["mamo_complex-0001"]["answer_raw"] == " 172666.667"


def test_optibench_takes_the_last_result_and_the_reference_program(
    downloaded: tuple[Path, list[Path], list[str]],
) -> None:
    got = records(downloaded[0], "optibench")
    first, second = got["optibench-0000"], got["optibench-0001"]
    assert (first["answer"], first["answer_raw"]) == (3600.0, "3600.0")
    assert first["extra"]["objective_key"] == "The maximum profit you can get"
    assert first["extra"]["type"] == "linear-notable" and first["extra"]["source_index"] == 0
    assert first["extra"]["gold_code_solver"] == "pyscipopt"
    assert first["extra"]["gold_formulation"].startswith("## Define Variables:")
    assert (second["answer"], second["answer_raw"]) == (1250.0, "1250.00")
    assert second["extra"]["results"]["The width of the garden"] == "25.000"
    assert second["extra"]["gold_code_solver"] == "pulp"
    assert second["extra"]["gold_formulation"].startswith("maximize L*W")


def test_optibench_pairs_programs_by_question_when_the_files_differ_in_size(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    for commit in ("56a638f689abbfd67650121cd4fdbe044e69e86c", "8ba33b786a0271b448685089aa0267ac92ea8936"):
        source = FIXTURES / "yangzhch6/ReSocratic" / commit
        for file in source.rglob("*.json"):
            target = root / "yangzhch6/ReSocratic" / commit / file.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(file.read_bytes())
    programs_path = root / "yangzhch6/ReSocratic/8ba33b786a0271b448685089aa0267ac92ea8936/data/e-opt.json"
    programs = json.loads(programs_path.read_text())
    unrelated = {"question": "An unrelated problem.", "code": "import gurobipy", "results": {"x": "1"}}
    programs_path.write_text(json.dumps([unrelated, *reversed(programs)]))
    with serve(root) as server:
        download(["optibench"], tmp_path / "out", base_url=url_of(server), timeout=5)
    got = read_jsonl(tmp_path / "out" / "optibench.jsonl")
    assert [r["extra"]["gold_code_solver"] for r in got] == ["pyscipopt", "pulp"]


def test_optmath_bench_numeric_answers(downloaded: tuple[Path, list[Path], list[str]]) -> None:
    got = records(downloaded[0], "optmath_bench")
    assert got["optmath_bench-0000"]["question"].endswith("Operations of a job run in order.")
    assert [(r["answer"], r["answer_raw"]) for r in got.values()] == [(25.0, "25.0"), (0.0, "0.0"), (1204.0, "1204")]
    assert got["optmath_bench-0002"]["extra"] == {"version": "standard", "source_id": 2}


def test_complexor_question_is_description_plus_first_sample(
    downloaded: tuple[Path, list[Path], list[str]],
) -> None:
    got = records(downloaded[0], "complexor")
    assert list(got) == ["complexor-knapsack_small", "complexor-prod_small"]
    knapsack = got["complexor-knapsack_small"]
    assert knapsack["question"] == (
        "The knapsack problem selects items with given weights and values so that the total value is maximal and "
        "the total weight stays within the capacity.\n\nThe following data is included in this problem (JSON):\n"
        '{"capacity": 10, "weights": [5, 4, 6], "values": [100, 120, 100]}'
    )
    assert (knapsack["answer"], knapsack["answer_raw"]) == (220.0, "220")
    assert knapsack["extra"]["gt_model"].startswith("Item: set of items\n")
    assert knapsack["extra"]["samples"][0]["output"] == [220]
    prod = got["complexor-prod_small"]
    assert (prod["answer"], prod["answer_raw"]) == (66.0, "66.0")
    assert "gt_model" not in prod["extra"]


# ---------------------------------------------------------------------------------------------- failures


def test_unknown_names_are_rejected_with_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="Unknown benchmark release.*nosuch.*Known: nl4opt, nlp4lp"):
        download(["nl4opt", "nosuch"], tmp_path)
    with pytest.raises(BadInput, match="No benchmark named"):
        download([], tmp_path)
    assert not any(tmp_path.iterdir())


def test_a_missing_file_names_the_url(tmp_path: Path) -> None:
    with serve(tmp_path / "empty") as server, pytest.raises(RunFailure) as caught:
        download(["bwor"], tmp_path / "out", base_url=url_of(server), timeout=5)
    message = str(caught.value)
    url = f"{url_of(server)}/bwz96sco/or_llm_agent/dfcc0e79fbe0aea249bf339b919d6843a4807b7e/data/datasets/BWOR.json"
    assert url in message and "404" in message and "pinned commit" in message
    assert not (tmp_path / "out" / "bwor.jsonl").exists()


def test_a_missing_folder_listing_says_why_a_listing_is_needed(tmp_path: Path) -> None:
    expected = "cannot be fetched one by one without a listing"
    with serve(tmp_path / "empty") as server, pytest.raises(RunFailure, match=expected) as caught:
        download(["complexor"], tmp_path / "out", base_url=url_of(server), timeout=5)
    assert "/repos/xzymustbexzy/Chain-of-Experts/contents/dataset/ComplexOR?ref=9ce1fb7e" in str(caught.value)


def test_a_refused_connection_names_the_url(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    with pytest.raises(RunFailure, match="Could not reach") as caught:
        download(["nl4opt"], tmp_path, base_url=base, timeout=5)
    assert f"{base}/bwz96sco/or_llm_agent/dfcc0e79fbe0aea249bf339b919d6843a4807b7e/data/datasets/NL4OPT" in str(
        caught.value
    )


def test_transient_errors_are_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dl, "RETRY_DELAYS", (0.0, 0.0))
    path = "/optsuite/OptMATH/f15bbc4477c70db85ad148df8bcc1b780bca0f8c/benchmark/OptMATH_Bench.json"
    with serve(FIXTURES) as server:
        server.failures[path] = [503, 502]
        download(["optmath_bench"], tmp_path, base_url=url_of(server), timeout=5)
        assert server.requests.count(path) == 3
        server.failures[path] = [503, 503, 503]
        with pytest.raises(RunFailure, match="HTTP 503") as caught:
            download(["optmath_bench"], tmp_path, base_url=url_of(server), timeout=5, overwrite=True)
    assert path in str(caught.value)
    assert len(read_jsonl(tmp_path / "optmath_bench.jsonl")) == 3  # the earlier file is untouched


def test_a_git_lfs_pointer_is_not_taken_for_data(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    target = root / "optsuite/OptMATH/f15bbc4477c70db85ad148df8bcc1b780bca0f8c/benchmark/OptMATH_Bench.json"
    target.parent.mkdir(parents=True)
    target.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12345\n")
    with serve(root) as server, pytest.raises(RunFailure, match="Git LFS pointer.*media.githubusercontent.com"):
        download(["optmath_bench"], tmp_path / "out", base_url=url_of(server), timeout=5)


def test_a_changed_source_format_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    target = root / "bwz96sco/or_llm_agent/dfcc0e79fbe0aea249bf339b919d6843a4807b7e/data/datasets/BWOR.json"
    target.parent.mkdir(parents=True)
    target.write_text('{"question": "renamed field", "answer": "1"}\n')
    with serve(root) as server, pytest.raises(RunFailure, match="Record 0 of .*BWOR.json has no 'en_question'"):
        download(["bwor"], tmp_path / "out", base_url=url_of(server), timeout=5)


# ---------------------------------------------------------------------------------------------- keeping files


def test_existing_files_are_kept_unless_overwrite(tmp_path: Path) -> None:
    mine = tmp_path / "nl4opt.jsonl"
    mine.write_text('{"id": "mine"}\n')
    other = {"file": "custom.jsonl", "benchmark": "nl4opt", "role": "variant"}
    (tmp_path / "manifest.json").write_text(json.dumps([other]))
    with serve(FIXTURES) as server:
        assert download(["nl4opt"], tmp_path, base_url=url_of(server)) == []
        assert server.requests == []
        assert mine.read_text() == '{"id": "mine"}\n'
        assert download(["nl4opt", "all"], tmp_path, base_url=url_of(server), overwrite=True)[0] == mine
        download(["nl4opt"], tmp_path, base_url=url_of(server), overwrite=True)
    assert len(read_jsonl(mine)) == 3
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest[0] == other  # entries of other files survive
    assert [e["file"] for e in manifest].count("nl4opt.jsonl") == 1  # replaced, not duplicated
    assert len(manifest) == 1 + len(STANDARD)


def test_a_broken_manifest_stops_before_any_download(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(BadInput, match="manifest.json cannot be read as JSON"):
        download(["nl4opt"], tmp_path, base_url="http://127.0.0.1:9")


@pytest.mark.parametrize(
    ("value", "answer", "raw", "note"),
    [
        ("1160.0", 1160.0, "1160.0", None),
        (25.0, 25.0, "25.0", None),
        (7, 7.0, "7", None),
        ("$1,200", 1200.0, "$1,200", "thousands separators / '$' removed"),
        ("[18.0]", 18.0, "[18.0]", "one-element list unwrapped"),
        ([3], 3.0, "[3]", "one-element list unwrapped"),
        ("No Best Solution", None, "No Best Solution", "marked: No Best Solution"),
        ("Infeasible", None, "Infeasible", "marked: Infeasible"),
        ("-99999", None, "-99999", "sentinel -99999 (no feasible/optimal answer)"),
        (-99999.0, None, "-99999.0", "sentinel -99999 (no feasible/optimal answer)"),
        ("", None, "", "empty gold"),
        (None, None, None, "no gold in the source"),
        ([1, 2], None, "[1, 2]", "gold is a list of 2 values, not one number"),
        ("about 5", None, "about 5", "gold is not a number: 'about 5'"),
    ],
)
def test_parse_gold(value: Any, answer: float | None, raw: str | None, note: str | None) -> None:
    assert parse_gold(value) == (answer, raw, note)


# ---------------------------------------------------------------------------------------------- the prepared files


def _source_files(name: str, rows: list[dict[str, Any]]) -> dict[str, bytes]:
    """Source files, in the release's format, that hold the given prepared records (path -> bytes)."""

    def lines(objects: list[dict[str, Any]]) -> bytes:
        return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects).encode()

    def array(objects: list[dict[str, Any]]) -> bytes:
        return json.dumps(objects, ensure_ascii=False, indent=4).encode()

    if name == "nl4opt":
        return {
            "data/datasets/NL4OPT_with_optimal_solution.json": lines(
                [{"en_question": r["question"], "en_answer": r["answer_raw"]} for r in rows]
            )
        }
    if name == "bwor":
        objects = [
            {"en_question": f"\n    {r['question']}\n", "cn_question": r["extra"]["cn_question"]}
            | {"en_answer": r["answer_raw"], "difficulty": r["extra"]["difficulty"], "id": r["extra"]["source_id"]}
            for r in rows
        ]
        return {"data/datasets/BWOR.json": lines(objects)}
    if name == "industryor":
        objects = [
            {"en_answer": r["answer_raw"], "difficulty": r["extra"]["difficulty"], "en_question": r["question"]}
            | {"question_type": r["extra"]["question_type"]}
            for r in rows
        ]
        return {"static/datasets/IndustryOR/dataset.jsonl": lines(objects)}
    if name in ("mamo_easy", "mamo_complex"):
        folder = "Easy_LP/mamo_easy_lp" if name == "mamo_easy" else "Complex_LP/mamo_complex_lp"
        objects = [
            {"id": r["extra"]["source_id"], "Question": r["question"], "Answer": r["answer_raw"]}
            | {"Category": r["extra"]["category"], "Type": r["extra"]["type"]}
            for r in rows
        ]
        return {f"data/optimization/{folder}.jsonl": lines(objects)}
    if name == "optmath_bench":
        objects = [
            {"en_question": r["question"], "en_answer": json.loads(r["answer_raw"]), "id": r["extra"]["source_id"]}
            for r in rows
        ]
        return {"benchmark/OptMATH_Bench.json": array(objects)}
    if name == "optibench":
        bench = [
            {"index": r["extra"]["source_index"], "question": r["question"], "results": r["extra"]["results"]}
            | {"type": r["extra"]["type"]}
            for r in rows
        ]
        programs = [
            {"question": r["question"], "scenario": r["extra"]["gold_formulation"], "code": r["extra"]["gold_code"]}
            for r in rows
        ]
        return {"data/OptiBench.json": array(bench), "@data/e-opt.json": array(programs)}
    if name == "nlp4lp":
        files: dict[str, bytes] = {}
        for r in rows:
            folder, extra = f"static/datasets/NLP4LP/{r['extra']['source_index']}", r["extra"]
            files[f"{folder}/description.txt"] = (r["question"] + "\n").encode()
            files[f"{folder}/parameters.json"] = json.dumps(extra["parameters"]).encode()
            if extra["parametrized_description"] is not None:
                info = {"parametrized_description": extra["parametrized_description"]}
                files[f"{folder}/problem_info.json"] = json.dumps(info).encode()
            solution = (
                {}
                if r["answer_raw"] is None
                else {"variables": extra["solution_variables"], "objective": json.loads(r["answer_raw"])}
            )
            files[f"{folder}/solution.json"] = json.dumps(solution).encode()
        return files
    assert name == "complexor"
    files = {}
    for r in rows:
        folder, extra = f"dataset/ComplexOR/{r['extra']['name']}", r["extra"]
        files[f"{folder}/description.txt"] = (extra["description"] + "\n").encode()
        files[f"{folder}/sample.json"] = json.dumps(extra["samples"], indent=4).encode()
        if "gt_model" in extra:
            files[f"{folder}/gt_model.txt"] = extra["gt_model"].encode()
    return files


def test_converters_reproduce_the_prepared_records(tmp_path: Path) -> None:
    """Rebuild source files from the first 60 records of each prepared standard file and convert them back.

    The source formats were checked against the real files at the pinned commits; this checks ids, questions,
    gold parsing, notes and extras against the prepared benchmark folder without copying any of it into the repo.
    """
    if not (BENCHMARKS / "manifest.json").exists():
        pytest.skip(f"no prepared benchmarks at {BENCHMARKS}")
    root = tmp_path / "srv"
    expected: dict[str, list[str]] = {}
    for name, source in SOURCES.items():
        expected[name] = (BENCHMARKS / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()[:60]
        rows = [json.loads(line) for line in expected[name]]
        for path, data in _source_files(name, rows).items():
            commit = source.commit
            if path.startswith("@"):  # OptiBench's reference programs live at another commit
                path, commit = path[1:], "8ba33b786a0271b448685089aa0267ac92ea8936"
            target = root / source.repo / commit / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    with serve(root) as server:
        download(known_names(), tmp_path / "out", base_url=url_of(server), timeout=10)
    for name, lines in expected.items():
        got = (tmp_path / "out" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(got) == len(lines), name
        for mine, prepared in zip(got, lines, strict=True):
            row = json.loads(prepared)
            # Taken from another repository's copy when the folder was prepared, so not part of this source.
            if row["extra"].pop("answer_in_cardinal_copy", None) is not None:
                assert json.loads(mine) == row, name
            else:
                assert mine == prepared, name  # byte for byte, so the manifest's SHA-256 can match too
