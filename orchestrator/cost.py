"""What a deployment costs: the one home for prices (config only: upctl's JSON carries none).

`upctl server plans --prices ZONE --prices-duration hour` (upcloud-cli >= v3.28.0) prints plan prices in its human
table only; its `-o json` output is the plain plan list. So the price comes from `provider.price_per_hour` and is
never guessed. UpCloud bills per started hour (upcloud-cli rounds durations up to whole hours the same way).
"""

from __future__ import annotations

import math
from typing import Any


def price_of(config: dict[str, Any]) -> tuple[float | None, str]:
    """(price per hour, currency) from a config snapshot (a plain dict: no pydantic on the status path)."""
    provider = config.get("provider") if isinstance(config, dict) else None
    if not isinstance(provider, dict):
        return None, "EUR"
    price = provider.get("price_per_hour")
    currency = str(provider.get("currency") or "EUR")
    if isinstance(price, (int, float)) and not isinstance(price, bool):
        return float(price), currency
    return None, currency


def billed_hours(seconds: float) -> int:
    """Started hours: what UpCloud bills for a server that existed this long."""
    return max(1, math.ceil(max(0.0, seconds) / 3600))


def cost_so_far(price: float, created_at: float, now: float) -> float:
    return price * billed_hours(now - created_at)


def billing_since(server_created: float | None, deployment_created: float) -> float:
    """When a server's cost starts: when it was recorded; a document from before servers carried the time: the
    deployment's creation."""
    return server_created if server_created is not None else deployment_created


def per_hour_text(price: float, currency: str) -> str:
    return f"≈ {price:.2f} {currency} per hour"


def money(amount: float, currency: str) -> str:
    return f"{amount:.2f} {currency}"
