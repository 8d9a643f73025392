"""Which stages of a run finished, and with which inputs: what a resumed run loads instead of running again.

``.nemo/stages.json`` records, per stage, when it started and finished, the detail it reported, and the content
hash of its declared inputs (see :class:`nemo_opt.stages.base.Stage`). A stage counts as finished once its
artifacts are written (each atomically) and it is listed here, which is written last. So after a ``kill -9`` the
folder holds, for every finished stage, complete artifacts, and for the stage in flight at most some partial work.

On a resume a finished stage is loaded only while its inputs hash the same; otherwise it and every stage after
it run again (:func:`unmark`), and a stage whose partial work was made with other inputs sets it aside first.

Everything is read and written through the workspace's safe door.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nemo_opt.exceptions import BadInput
from nemo_opt.fsutil import to_jsonable
from nemo_opt.result import sha256_text
from nemo_opt.workspace import Workspace

__all__ = [
    "finished_stages",
    "read_resumable",
    "inputs_digest",
    "mark_finished",
    "mark_started",
    "started_digest",
    "unmark",
]


def _read(workspace: Workspace) -> dict[str, Any]:
    if not workspace.exists(workspace.stages_file):
        return {}
    data = workspace.read_json(workspace.stages_file)
    return data if isinstance(data, dict) else {}


def finished_stages(workspace: Workspace) -> dict[str, Any]:
    """{stage: detail} of the stages that finished, in the order they finished."""
    return dict(_read(workspace).get("finished", {}))


def started_digest(workspace: Workspace, stage: str) -> str | None:
    """The inputs hash the last attempt at ``stage`` started with (None: no attempt recorded)."""
    value = _read(workspace).get("started", {}).get(stage)
    return str(value) if value is not None else None


def _write(workspace: Workspace, data: dict[str, Any]) -> None:
    workspace.write_json(
        workspace.stages_file, {"finished": data.get("finished", {}), "started": data.get("started", {})}
    )


def mark_started(workspace: Workspace, stage: str, digest: str) -> None:
    """Record that an attempt at ``stage`` started with inputs hashing to ``digest``."""
    data = _read(workspace)
    data.setdefault("started", {})[stage] = digest
    _write(workspace, data)


def mark_finished(workspace: Workspace, stage: str, detail: Any, digest: str = "") -> None:
    """Add ``stage`` to the finished stages (after its artifacts are written), with its inputs hash."""
    data = _read(workspace)
    data.setdefault("finished", {})[stage] = {**to_jsonable(detail), "inputs": digest}
    _write(workspace, data)


def unmark(workspace: Workspace, stages: Iterable[str]) -> None:
    """Forget that ``stages`` finished (a stage that runs again invalidates what follows it)."""
    drop = set(stages)
    data = _read(workspace)
    data["finished"] = {k: v for k, v in data.get("finished", {}).items() if k not in drop}
    _write(workspace, data)


def inputs_digest(workspace: Workspace, paths: Iterable[Path]) -> str:
    """SHA-256 over the run-folder files ``paths`` (name and bytes; a missing file counts as absent)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(workspace.rel(path).encode() + b"\0")
        try:
            content = workspace.read_bytes(path) if workspace.exists(path) else None
        except OSError as exc:  # refused by the safe door (a link, a FIFO, too large): it matches nothing recorded
            digest.update(f"refused: {exc}".encode())
            continue
        digest.update(b"absent" if content is None else hashlib.sha256(content).digest())
    return digest.hexdigest()


def read_resumable(workspace: Workspace) -> tuple[dict[str, Any], str]:
    """``run.json`` and the problem text of a run that can be resumed; :class:`BadInput` saying why not."""
    if not workspace.exists(workspace.run_meta):
        raise BadInput(f"{workspace.root} has no run.json, so it cannot be resumed (it predates resume support).")
    try:
        meta = workspace.read_json(workspace.run_meta)
        run_id = str(meta["run_id"])
        problem = workspace.read_text(workspace.problem).removesuffix("\n")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadInput(f"{workspace.root} cannot be resumed: its run.json or problem.md is unusable ({exc}).") from exc
    if sha256_text(problem) != meta["problem_sha256"]:
        raise BadInput(f"{workspace.problem} was changed after the run started; start a new run instead.")
    if workspace.exists(workspace.result):
        previous = workspace.read_json(workspace.result)
        if not previous.get("error"):
            raise BadInput(
                f"Run {run_id} already finished ({previous.get('status')}); nothing to resume. "
                f"See: nemo-opt show {run_id}"
            )
    return meta, problem
