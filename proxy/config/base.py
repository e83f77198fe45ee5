"""What every section shares: frozen models that refuse unknown keys, the list type the
environment may give as one string, and the mark of a secret."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

from proxy.params import Crop
from proxy.params import PolicyName as PolicyName  # one word list: the URL's (params)

CropName = Crop  # the URL's crop names (params)


def comma_list(value: object) -> object:
    """``a, b,c`` (environment, flags) -> ``("a", "b", "c")``; other values pass to pydantic."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


# A tuple of names that the environment and flags may give as one "a,b,c" string.
CommaList = Annotated[tuple[str, ...], BeforeValidator(comma_list)]


class Section(BaseModel):
    """A section of the configuration: frozen once built, and an unknown key is a typo
    (an error), never silently ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# Marks a setting whose value must never be printed (``loupe config``, logs).
SECRET: dict[str, Any] = {"secret": True}
REDACTED = "***"
