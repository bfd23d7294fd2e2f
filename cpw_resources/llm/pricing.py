"""Dollar cost of LLM calls from a pricing file (USD per million tokens, per model, dated).

The shipped ``data/pricing.toml`` lists common mini-class and larger models; set
``CPW_PRICING_FILE`` to your own copy to change prices or add models. A model is looked up as
``provider:model``, then ``provider:*``.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path

from cpw_resources import DATA_DIR
from cpw_resources.errors import ConfigError

SHIPPED = DATA_DIR / "pricing.toml"


@dataclass(frozen=True)
class Price:
    input_per_mtok: float
    output_per_mtok: float
    as_of: dt.date

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1e6


class Pricing:
    def __init__(self, prices: dict[str, Price], source: Path) -> None:
        self.prices, self.source = prices, source

    @classmethod
    def load(cls, path: Path | None = None) -> Pricing:
        path = Path(path) if path else SHIPPED
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            prices = {
                name: Price(float(entry["input"]), float(entry["output"]),
                            entry["as_of"] if isinstance(entry["as_of"], dt.date)
                            else dt.date.fromisoformat(str(entry["as_of"])))
                for name, entry in data.get("models", {}).items()
            }
        except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as error:
            raise ConfigError(f"pricing file {path} (CPW_PRICING_FILE) is unreadable: "
                              f"{error}") from error
        return cls(prices, path)

    def price(self, provider: str, model: str) -> Price:
        found = self.prices.get(f"{provider}:{model}") or self.prices.get(f"{provider}:*")
        if found is None:
            raise ConfigError(
                f"no price for {provider}:{model} in {self.source}; add "
                f'[models."{provider}:{model}"] with input, output (USD per million tokens) '
                "and as_of to a copy of it and set CPW_PRICING_FILE"
            )
        return found
