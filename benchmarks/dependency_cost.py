"""What a dependency costs: installed size of it and of the packages only it pulls in, and its import time.

For each distribution named on the command line the script walks its requirement closure in the current
environment, removes everything that the rest of nemo-opt's core dependencies need as well, and sums the files
the remaining distributions installed (their RECORD). Import times are the median wall time of a fresh
interpreter running ``import MODULE`` (``-X importtime`` cumulative figure of the top module), so module caches
on disk are warm, as they are for a user's second run.

    python benchmarks/dependency_cost.py scikit-learn matplotlib --import sklearn.feature_extraction.text \
        --import matplotlib.backends.backend_svg --import nemo_opt.embed.lexical --import nemo_opt

Run it with the project's virtualenv and PYTHONPATH pointing at ``src`` (so ``nemo_opt`` is this checkout).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent


def _requires(name: str) -> set[str]:
    """Direct, unconditional requirements of an installed distribution (extras and markers that do not apply out)."""
    try:
        raw = metadata.requires(name) or []
    except metadata.PackageNotFoundError:
        return set()
    out = set()
    for line in raw:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        out.add(canonicalize_name(req.name))
    return out


def closure(names: set[str]) -> set[str]:
    """Every distribution ``names`` need, themselves included."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_requires(name) - seen)
    return seen


def installed_bytes(name: str) -> int:
    """Bytes on disk of the files a distribution's RECORD lists."""
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return 0
    total = 0
    for file in dist.files or []:
        path = Path(str(dist.locate_file(file)))
        if path.is_file():
            total += path.stat().st_size
    return total


def core_dependencies() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}


def import_seconds(module: str, repeats: int) -> float:
    """Median cumulative import time of ``module`` in a fresh interpreter."""
    samples = []
    for _ in range(repeats):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            capture_output=True,
            text=True,
            check=True,
        )
        pattern = re.compile(rf"^import time:\s+\d+ \|\s+(\d+) \|\s*{re.escape(module)}$", re.MULTILINE)
        # The last line is the top-level import; earlier ones are the module imported by its own package.
        matches = pattern.findall(done.stderr)
        if not matches:
            raise SystemExit(f"no import time line for {module}")
        samples.append(int(matches[-1]) / 1e6)
    return statistics.median(samples)


def imported_by(module: str, watched: str) -> bool:
    """Whether importing ``module`` imports any module of the package ``watched``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True, text=True, check=True
    )
    return re.search(rf"\|\s*{re.escape(watched)}(\.|$)", done.stderr, re.MULTILINE) is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dists", nargs="*", help="distributions to cost (e.g. scikit-learn matplotlib)")
    parser.add_argument("--import", dest="imports", action="append", default=[], help="module to time")
    parser.add_argument("--watch", action="append", default=[], help="report whether each --import pulls this in")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    core = core_dependencies()
    everything = closure(core)
    total = sum(installed_bytes(d) for d in everything) / 1e6
    print(f"core install: {total:.1f} MB in {len(everything)} distributions")
    for dist in args.dists:
        name = canonicalize_name(dist)
        others = closure(core - {name})
        own = sorted(closure({name}) - others)
        sizes = {d: installed_bytes(d) for d in own}
        print(f"{dist}: {sum(sizes.values()) / 1e6:.1f} MB installed that no other core dependency needs")
        for d in own:
            try:
                version = metadata.version(d)
            except metadata.PackageNotFoundError:
                version = "not installed"
            print(f"    {d} {version}: {sizes[d] / 1e6:.1f} MB")
    for module in args.imports:
        line = f"import {module}: {import_seconds(module, args.repeats):.3f} s (median of {args.repeats})"
        for watched in args.watch:
            line += f"; imports {watched}: {'yes' if imported_by(module, watched) else 'no'}"
        print(line)


if __name__ == "__main__":
    main()
