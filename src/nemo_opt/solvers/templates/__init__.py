"""Verified ``model.py`` templates, one per backend, and the example data they are tested on.

Each template is a complete model file for a small product-mix problem: it reads ``data.json`` from the working
directory, builds and solves the model, exports it where the library can, and writes ``solution.json`` following
the model-file contract. They import nothing from nemo_opt, because model files run in a sandbox on their own.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

__all__ = ["EXAMPLE_DATA", "example_data", "load_template", "template_names"]

EXAMPLE_DATA = "example_data.json"


def load_template(name: str, suffix: str = ".py") -> str:
    """The text of the template for backend ``name``; FileNotFoundError when there is none."""
    return resources.files(__name__).joinpath(f"{name}{suffix}").read_text(encoding="utf-8")


def template_names() -> list[str]:
    """Backend names that have a template, sorted."""
    return sorted(
        entry.name.removesuffix(".py")
        for entry in resources.files(__name__).iterdir()
        if entry.name.endswith(".py") and not entry.name.startswith("_")
    )


def example_data() -> dict[str, Any]:
    """The example data every template solves (a product mix with integer quantities and continuous overtime)."""
    data: dict[str, Any] = json.loads(resources.files(__name__).joinpath(EXAMPLE_DATA).read_text(encoding="utf-8"))
    return data
