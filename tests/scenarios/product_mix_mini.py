"""The product-mix run (tests/scenarios/product_mix.py) with agent replies in mini-swe-agent's text format.

Each agent turn is a THOUGHT and one ```mswea_bash_command block, as a model prompted by mini-swe-agent's
templates answers; files are written with heredocs, and the agents finish with
``echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT``. The simulator once sends two blocks in one reply (refused
by the format check). The optimizer's first accepted model lacks the finishing-hours limit, so validation
fails and the repair round resumes the same conversation. Expected answer: 4100 (hand computation in
product_mix.py).
"""

from __future__ import annotations

from nemo_opt.testing import Reply
from tests.scenarios.product_mix import (
    EXPECTED_OBJECTIVE,
    EXTRACTION,
    MODEL_DRAFT,
    RIGHT_MODEL,
    SIMULATOR_CODE,
    SIMULATOR_TESTS,
    VIOLATED,
    WRONG_OBJECTIVE,
)

__all__ = [
    "EXPECTED_OBJECTIVE",
    "EXTRACTION",
    "OPTIMIZER",
    "SIMULATOR",
    "VIOLATED",
    "WRONG_OBJECTIVE",
    "mini_reply",
]

SUBMIT = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"


def mini_reply(thought: str, command: str) -> Reply:
    """One mini-swe-agent turn: a THOUGHT, then exactly one mswea_bash_command block."""
    return Reply(text=f"THOUGHT: {thought}\n\n```mswea_bash_command\n{command}\n```")


def heredoc(path: str, content: str) -> str:
    """A shell command writing ``content`` to ``path``."""
    return f"cat > {path} <<'PYEOF'\n{content.rstrip()}\nPYEOF"


SIMULATOR = [
    Reply(
        text="THOUGHT: First I look around, then I create the folder.\n\n"
        "```mswea_bash_command\nls\n```\n\n```mswea_bash_command\nmkdir -p simulator\n```"
    ),
    mini_reply(
        "One command per reply. I write the simulator of the workshop week.",
        heredoc("simulator/simulator.py", SIMULATOR_CODE),
    ),
    mini_reply(
        "Now the hand-computed tests, and I run them.",
        heredoc("simulator/test_simulator.py", SIMULATOR_TESTS) + "\npython -m pytest -q simulator/test_simulator.py",
    ),
    mini_reply("The tests pass, so the simulator is ready to submit.", SUBMIT),
]

OPTIMIZER = [
    mini_reply("Let me look at the data first.", "cat data.json"),
    mini_reply("I'll write the model with HiGHS and run it.", heredoc("model.py", MODEL_DRAFT) + "\npython model.py"),
    mini_reply(
        "The data key is 'profit', not 'profits'. Fixing it and solving again.",
        'sed -i \'s/data\\["profits"\\]/data["profit"]/\' model.py && python model.py && cat solution.json',
    ),
    mini_reply("The model solves to optimality; submitting.", SUBMIT),
    # The validation report says the finishing hours are overrun: the repair round continues from here.
    mini_reply(
        "The finishing-hours limit is missing from the model. Adding it and solving again.",
        heredoc("model.py", RIGHT_MODEL) + "\npython model.py",
    ),
    mini_reply("Fixed and re-solved; submitting.", SUBMIT),
]
