"""What every config model shares: the strict base (unknown keys refused, values frozen) and the plain-path type."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _plain_path(v: str) -> str:
    # pip writes a venv's path unquoted into its launcher scripts, so shell characters would run there.
    if not re.fullmatch(r"[A-Za-z0-9._/+-]+", v):
        raise ValueError("must be a plain path (letters, digits, '.', '_', '-', '+', '/')")
    return v


VenvPath = Annotated[str, AfterValidator(_plain_path)]
