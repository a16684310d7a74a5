"""The base of every contract model and the small shapes all of them share (ids, e-mail, actor, party).

Its own module so that the models of each domain (shared/models.py, shared/resolution_models.py,
shared/dispute_models.py) can use them without importing one another in a circle.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated

import pydantic
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from shared.money import int64


@lru_cache(maxsize=8192)
def _valid_email(value: str) -> str:
    # email-validator parses the address from scratch each time (a large share of validating a
    # Return); every event and read of an aggregate validates the same few addresses again.
    # Only successes are cached: an invalid address raises the same error every time.
    return pydantic.networks.validate_email(value)[1]


class EmailStr(pydantic.EmailStr):
    """pydantic's EmailStr (same checks, errors and schema), remembering addresses it accepted."""

    @classmethod
    def _validate(cls, input_value: str, /) -> str:
        return _valid_email(input_value)


Id = Annotated[str, StringConstraints(min_length=1, max_length=128)]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
Quantity = Annotated[int, Field(gt=0, json_schema_extra={"format": "int64"}), AfterValidator(int64)]
# Order dates outside these are typing errors or placeholders, never a delivered order.
EARLIEST_ORDER = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_ORDER = datetime(2100, 1, 1, tzinfo=UTC)


class Contract(BaseModel):
    """Base of every contract model: tolerant of fields added by newer producers."""

    model_config = ConfigDict(extra="ignore")


class Party(Contract):
    id: Id
    name: str
    email: EmailStr
    locale: str = "en"
    timezone: str | None = Field(
        default=None, description="IANA zone for deadlines in emails; marketplace default when absent."
    )


class Actor(Contract):
    role: str = Field(description="buyer, seller, agent, service or platform")
    id: str
