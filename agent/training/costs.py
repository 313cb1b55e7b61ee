"""What the LLM calls cost, and the caps that stop a run before it costs too much.

Prices are US dollars per million tokens. The built-in table holds list prices as we knew
them when writing it; they change, so `llm.prices` in the config adds or overrides
entries. A model is matched exactly, else by the longest known prefix (dated snapshots
such as gpt-4.1-mini-2025-04-14 match gpt-4.1-mini). Local servers cost nothing.
"""

from __future__ import annotations

from pydantic import BaseModel

from edas_agent.config import LLMSettings, Price

BUILTIN_PRICES: dict[str, Price] = {
    "gpt-4o-mini": Price(input=0.15, output=0.60),
    "gpt-4o": Price(input=2.50, output=10.00),
    "gpt-4.1-nano": Price(input=0.10, output=0.40),
    "gpt-4.1-mini": Price(input=0.40, output=1.60),
    "gpt-4.1": Price(input=2.00, output=8.00),
    "claude-haiku-4-5": Price(input=1.00, output=5.00),
    "claude-sonnet-4-5": Price(input=3.00, output=15.00),
    "claude-opus-4-1": Price(input=15.00, output=75.00),
}
_FREE = {"builtin", "random", "replay", "optuna"}


class BudgetExhausted(Exception):
    """A configured cap on LLM calls or money is reached: the run stops cleanly."""


class Spend(BaseModel):
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    priced: bool = True  # False once a call of a model without a known price was made

    @classmethod
    def of(cls, usages) -> Spend:
        """What per-proposal LLMUsage records (None where there was no LLM) add up to."""
        used = [u for u in usages if u is not None]
        return cls(
            calls=sum(u.calls for u in used),
            input_tokens=sum(u.input_tokens for u in used),
            output_tokens=sum(u.output_tokens for u in used),
            cost=sum(u.cost or 0.0 for u in used),
            priced=all(u.cost is not None for u in used if u.calls),
        )


class LLMBudget:
    def __init__(self, settings: LLMSettings):
        self.settings = settings
        self.prices = {**BUILTIN_PRICES, **settings.prices}
        self.spend = Spend()

    def restore(self, spent: Spend) -> None:
        """What a resumed run had already spent, so caps count from there."""
        self.spend = spent

    def price(self, model: str) -> Price | None:
        local = self.settings.provider in _FREE or self.settings.provider == "openai-compatible"
        if local and model not in self.prices:
            return Price(input=0, output=0)
        if model in self.prices:
            return self.prices[model]
        prefixes = [name for name in self.prices if model.startswith(name)]
        return self.prices[max(prefixes, key=len)] if prefixes else None

    def require_price(self, model: str) -> None:
        """With a cost cap, a model without a price is a configuration error, not a surprise."""
        if self.settings.max_cost is not None and self.price(model) is None:
            raise ValueError(
                f"llm.max_cost is set but model {model!r} has no known price; add it under "
                f"llm.prices, e.g. prices: {{{model}: {{input: 1.0, output: 4.0}}}}"
            )

    def before_call(self) -> None:
        s, cap_calls, cap_cost = self.spend, self.settings.max_calls, self.settings.max_cost
        if cap_calls is not None and s.calls >= cap_calls:
            raise BudgetExhausted(f"llm.max_calls reached: {s.calls} calls")
        if cap_cost is not None and s.cost >= cap_cost:
            raise BudgetExhausted(f"llm.max_cost reached: ${s.cost:.4f} of ${cap_cost:.4f}")

    def charge(self, model: str, input_tokens: int, output_tokens: int) -> float | None:
        """Record one call; returns its cost, None when the model has no price."""
        price = self.price(model)
        cost = (
            None
            if price is None
            else (input_tokens * price.input + output_tokens * price.output) / 1e6
        )
        self.spend = Spend(
            calls=self.spend.calls + 1,
            input_tokens=self.spend.input_tokens + input_tokens,
            output_tokens=self.spend.output_tokens + output_tokens,
            cost=self.spend.cost + (cost or 0.0),
            priced=self.spend.priced and cost is not None,
        )
        return cost
