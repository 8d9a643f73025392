"""Test doubles for the model service, shipped so that projects built on nemo-opt can test offline too.

:class:`ScriptedLLM` answers in-process; :class:`OpenAICompatServer` is a real HTTP server on 127.0.0.1 that
the ``openai`` SDK talks to. Both are driven by the same scripts of :class:`Reply` objects.
"""

from nemo_opt.testing.openai_server import OpenAICompatServer, RecordedRequest
from nemo_opt.testing.scripted import (
    Reply,
    RoleRouter,
    Script,
    ScriptedLLM,
    ScriptExhausted,
    ScriptFunction,
    ScriptQueue,
)

__all__ = [
    "OpenAICompatServer",
    "RecordedRequest",
    "Reply",
    "RoleRouter",
    "Script",
    "ScriptExhausted",
    "ScriptFunction",
    "ScriptQueue",
    "ScriptedLLM",
]
