"""The model layer: the LLM seam, backends by name, the reply cache, pricing and the call recorder."""

from __future__ import annotations

from nemo_opt.llm.base import LLM, Choice, Completion, Message, Role, ToolCall, ToolSpec, Usage
from nemo_opt.llm.cache import ReplyCache, request_key
from nemo_opt.llm.openai_backend import OpenAIChat
from nemo_opt.llm.pricing import cost_usd
from nemo_opt.llm.recorder import Accounting, RecordedLLM
from nemo_opt.llm.registry import ModelRef, create_llm, parse_model_name
from nemo_opt.llm.retry import RetryPolicy

__all__ = [
    "LLM",
    "Accounting",
    "Choice",
    "Completion",
    "Message",
    "ModelRef",
    "OpenAIChat",
    "RecordedLLM",
    "ReplyCache",
    "RetryPolicy",
    "Role",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "cost_usd",
    "create_llm",
    "parse_model_name",
    "request_key",
]
