"""Coding agents: the protocol (:mod:`nemo_opt.agent.base`) and the backends that implement it, by name.

``builtin`` is nemo-opt's own tool loop (:class:`~nemo_opt.agent.loop.ToolLoopAgent`); ``mini-swe-agent`` runs
mini-swe-agent's loop on the same sandbox and model (the ``minisweagent`` extra, imported only when chosen).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from nemo_opt.agent.base import Agent
from nemo_opt.agent.loop import AgentLimits, ToolLoopAgent
from nemo_opt.exceptions import ConfigError
from nemo_opt.llm.base import LLM
from nemo_opt.sandbox.base import Sandbox
from nemo_opt.workspace import Workspace

__all__ = ["AGENT_BACKENDS", "AgentFactory", "make_agent"]

# (model, sandbox, workspace, limits, temperature, protocol) -> agent
Protocol = Literal["tools", "text", "files"]
AgentFactory = Callable[[LLM, Sandbox, Workspace, AgentLimits, float, Protocol], Agent]


def _builtin(
    llm: LLM, sandbox: Sandbox, workspace: Workspace, limits: AgentLimits, temperature: float, protocol: Protocol
) -> Agent:
    return ToolLoopAgent(llm, sandbox, workspace, protocol=protocol, limits=limits, temperature=temperature)


def _mini_swe_agent(
    llm: LLM, sandbox: Sandbox, workspace: Workspace, limits: AgentLimits, temperature: float, protocol: Protocol
) -> Agent:
    from nemo_opt.agent.external import MiniSweAgent  # optional extra: imported only when chosen

    return MiniSweAgent(llm, sandbox, workspace, limits=limits, temperature=temperature)


AGENT_BACKENDS: dict[str, AgentFactory] = {"builtin": _builtin, "mini-swe-agent": _mini_swe_agent}


def make_agent(
    backend: str,
    llm: LLM,
    sandbox: Sandbox,
    workspace: Workspace,
    *,
    limits: AgentLimits,
    temperature: float,
    protocol: Protocol,
) -> Agent:
    """The agent of backend ``backend`` (a key of :data:`AGENT_BACKENDS`)."""
    factory = AGENT_BACKENDS.get(backend)
    if factory is None:
        raise ConfigError(f"Unknown agent backend {backend!r}; use one of: {', '.join(AGENT_BACKENDS)}.")
    return factory(llm, sandbox, workspace, limits, temperature, protocol)
