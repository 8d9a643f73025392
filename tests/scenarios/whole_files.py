"""The product mix with the whole-file agent protocol, as a small local coder model answers it.

The simulator gives one file per reply: ``simulator.py`` (no path named), then tests with a slip in a hand
computation (the check fails), then the tests fixed, again with no path (its content says which file it is).
The optimizer's first reply is prose with no file; the second is a PuLP body that forgets the finishing hours
(it runs: 4170, which the simulator refuses) followed by a usage example in a bash block; the repair is the
right body. The harness adds the ending that exports, solves and writes solution.json; the expected optimum
(4100, 30 tables and 40 chairs) is the hand computation of :mod:`tests.scenarios.product_mix`.
"""

from __future__ import annotations

from nemo_opt.testing import Reply
from tests.scenarios.product_mix import (
    EXPECTED_OBJECTIVE,
    PULP_MODEL,
    SIMULATOR_CODE,
    SIMULATOR_TESTS,
    WRONG_OBJECTIVE,
    spec_reply,
)
from tests.scenarios.product_mix import SPEC as SPEC

__all__ = ["EXPECTED_OBJECTIVE", "EXTRACTION", "OPTIMIZER", "SIMULATOR", "WRONG_OBJECTIVE"]

EXTRACTION = spec_reply(SPEC)

WRONG_TESTS = SIMULATOR_TESTS.replace("- 4100) < 1e-9", "- 4000) < 1e-9")  # a slip in the hand computation
SIMULATOR = [
    Reply(text=f"Here is the simulator:\n\n```python\n{SIMULATOR_CODE}```\n"),
    Reply(text=f"```python\n{WRONG_TESTS}```\n"),
    # Unnamed, as a 1.5B model fixes its tests: its content says it is the test file, not the simulator.
    Reply(text=f"The profit is 2100 + 2000 = 4100. Here is the updated test:\n\n```python\n{SIMULATOR_TESTS}```\n"),
]

# The body of the PuLP model of the native-tool scenario: everything before it solves and writes its files.
RIGHT = PULP_MODEL[: PULP_MODEL.index("start = time.time()")].replace("import time\n", "")
FINISHING = next(line for line in RIGHT.splitlines(keepends=True) if '"finishing"' in line)
DRAFT = RIGHT.replace(FINISHING, "")

OPTIMIZER = [
    Reply(text="I will model the weekly plan with integer quantities of tables and chairs and maximize profit."),
    Reply(text=f"```python\n{DRAFT}```\n\nRun it with:\n\n```bash\npython model.py\n```\n"),
    Reply(text=f"The finishing hours were missing.\n\nmodel.py\n```python\n{RIGHT}```\n"),
]
