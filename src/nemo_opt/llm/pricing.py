"""Token prices of well-known models, to put a dollar figure on each call.

Prices are list prices in USD per million tokens as of 2025-08-01, without batch or cached-input discounts.
They change: pass ``prices=`` to :func:`cost_usd` (or update :data:`PRICES`) to override them. Models not in
the table (local servers, most open-weight models) have no cost, reported as None rather than 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from nemo_opt.llm.base import Usage

__all__ = ["PRICES", "Price", "cost_usd", "price_for"]


@dataclass(frozen=True)
class Price:
    """USD per million input (prompt) and output (completion) tokens."""

    input: float
    output: float


PRICES: dict[str, Price] = {
    # OpenAI
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "o1": Price(15.00, 60.00),
    "o3": Price(2.00, 8.00),
    "o3-mini": Price(1.10, 4.40),
    "o4-mini": Price(1.10, 4.40),
    "gpt-5": Price(1.25, 10.00),
    "gpt-5-mini": Price(0.25, 2.00),
    "gpt-5-nano": Price(0.05, 0.40),
    # Anthropic
    "claude-3-5-haiku": Price(0.80, 4.00),
    "claude-3-7-sonnet": Price(3.00, 15.00),
    "claude-sonnet-4": Price(3.00, 15.00),
    "claude-sonnet-4-5": Price(3.00, 15.00),
    "claude-opus-4": Price(15.00, 75.00),
    "claude-opus-4-1": Price(15.00, 75.00),
    "claude-haiku-4-5": Price(1.00, 5.00),
    # DeepSeek (cache-miss input price)
    "deepseek-chat": Price(0.27, 1.10),
    "deepseek-reasoner": Price(0.55, 2.19),
}


def price_for(model: str, prices: Mapping[str, Price] | None = None) -> Price | None:
    """The price of ``model``, matching dated ids by the longest table prefix.

    ``gpt-4.1-2025-04-14`` matches ``gpt-4.1``; ``gpt-4.1-mini-2025-04-14`` matches ``gpt-4.1-mini``. A prefix
    only matches at a ``-`` boundary, so ``o3x`` does not match ``o3``. Router-style names such as
    ``openai/gpt-4.1`` are matched on the part after the last ``/``.
    """
    table = PRICES if prices is None else prices
    bare = model.rsplit("/", 1)[-1].lower()
    best: str | None = None
    for key in table:
        if (bare == key or bare.startswith(key + "-")) and (best is None or len(key) > len(best)):
            best = key
    return None if best is None else table[best]


def cost_usd(model: str, usage: Usage, prices: Mapping[str, Price] | None = None) -> float | None:
    """Dollar cost of ``usage`` on ``model``; None when the model's price is unknown."""
    price = price_for(model, prices)
    if price is None:
        return None
    return (usage.prompt_tokens * price.input + usage.completion_tokens * price.output) / 1_000_000
