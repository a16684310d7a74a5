"""Request dependencies are `async def`: FastAPI runs a plain `def` one in its thread pool, a
thread hop per dependency per request (a tenth of the returns service's CPU in the bench)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute

from services.metrics import api as metrics_api
from services.refunds import api as refunds_api
from services.returns import api as returns_api
from services.returns import offers_api


def _calls(dependant: Any) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _is_async(call: Any) -> bool:
    # a function, or an instance of a class with an async __call__ (fastapi.security.HTTPBearer)
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(type(call).__call__)


@pytest.mark.parametrize("router", [returns_api.router, offers_api.router, metrics_api.router, refunds_api.router])
def test_every_dependency_of_every_route_is_async(router: APIRouter) -> None:
    sync = {
        f"{route.path}: {getattr(call, '__qualname__', call)}"
        for route in router.routes
        if isinstance(route, APIRoute)
        for call in _calls(route.dependant)
        if not _is_async(call)
    }
    assert not sync
