"""Dollar cost of LLM calls (USD per million tokens, per model, dated) and of compute (USD per
CPU core-hour and GPU-hour, ``[compute]``) from a pricing file.

The shipped ``data/pricing.toml`` lists common mini-class and larger models; set
``CPW_PRICING_FILE`` to your own copy to change prices or add models. A model is looked up as
``provider:model``, then ``provider:*``.
"""

from __future__ import annotations

import datetime as dt
import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path

from cpw_resources import DATA_DIR
from cpw_resources.errors import ConfigError

SHIPPED = DATA_DIR / "pricing.toml"


def _date(value: object) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


@dataclass(frozen=True)
class Price:
    input_per_mtok: float
    output_per_mtok: float
    as_of: dt.date

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1e6


@dataclass(frozen=True)
class ComputePrice:
    """US dollars per core-hour of CPU time and per hour a GPU was held."""

    cpu_hour: float = 0.0
    gpu_hour: float = 0.0
    as_of: dt.date | None = None

    def cost(self, cpu_seconds: float, gpu_seconds: float = 0.0) -> float:
        return (cpu_seconds * self.cpu_hour + gpu_seconds * self.gpu_hour) / 3600


class Pricing:
    def __init__(self, prices: dict[str, Price], source: Path,
                 compute: ComputePrice | None = None) -> None:
        self.prices, self.source = prices, source
        #: No ``[compute]`` table (an older copy of the file): compute is not priced.
        self.compute = compute or ComputePrice()

    @classmethod
    def load(cls, path: Path | None = None) -> Pricing:
        path = Path(path) if path else SHIPPED
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            prices = {
                name: Price(float(entry["input"]), float(entry["output"]),
                            _date(entry["as_of"]))
                for name, entry in data.get("models", {}).items()
            }
            table = data.get("compute")
            compute = None if table is None else ComputePrice(
                float(table.get("cpu_hour", 0.0)), float(table.get("gpu_hour", 0.0)),
                _date(table["as_of"]) if "as_of" in table else None)
        except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as error:
            raise ConfigError(f"pricing file {path} (CPW_PRICING_FILE) is unreadable: "
                              f"{error}") from error
        if compute is not None and min(compute.cpu_hour, compute.gpu_hour) < 0:
            raise ConfigError(f"pricing file {path} (CPW_PRICING_FILE): [compute] prices "
                              "must not be negative")
        return cls(prices, path, compute)

    @classmethod
    @functools.cache
    def cached(cls, path: Path | None = None) -> Pricing:
        """:meth:`load`, once per process and file (stages price their compute with it)."""
        return cls.load(path)

    def price(self, provider: str, model: str) -> Price:
        found = self.prices.get(f"{provider}:{model}") or self.prices.get(f"{provider}:*")
        if found is None:
            raise ConfigError(
                f"no price for {provider}:{model} in {self.source}; add "
                f'[models."{provider}:{model}"] with input, output (USD per million tokens) '
                "and as_of to a copy of it and set CPW_PRICING_FILE"
            )
        return found
