"""A small method shared by the registry-backed SDK tests."""

from __future__ import annotations

from pydantic import BaseModel

from baton_sdk import InvocationContext, RetryPolicy, method


class Parcel(BaseModel):
    weight_kg: float
    destination: str


class Quote(BaseModel):
    price: float


@method("parcel.quote", version="1.1.0", tags=["parcel", "pricing"], timeout=3.0,
        retry=RetryPolicy(max_attempts=2), idempotent=True)
async def quote(params: Parcel, ctx: InvocationContext) -> Quote:
    """Prices a parcel."""
    return Quote(price=params.weight_kg * 2)
