"""One problem `type` per kind of error, and field errors always in `errors` (docs/api.md).

Every `ProblemError` subclass the services and shared define is collected by importing every
module; a new error class that reuses another's slug, or a 422 that can be raised without naming
its fields, fails here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections import defaultdict

import pytest

import services
import shared
from shared.http import ProblemError, Unprocessable, problem_type
from shared.http.problems import _STATUS_SLUGS


def _import_everything() -> None:
    for package in (shared, services):
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if not module.name.endswith("__main__"):
                importlib.import_module(module.name)


def _all_problem_classes() -> list[type[ProblemError]]:
    _import_everything()
    found: list[type[ProblemError]] = []
    todo: list[type[ProblemError]] = [ProblemError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return [cls for cls in found if cls.__module__.startswith(("shared.", "services."))]


CLASSES = _all_problem_classes()


def test_the_collection_finds_the_errors_of_every_service():
    modules = {cls.__module__.split(".")[1] for cls in CLASSES if cls.__module__.startswith("services.")}
    assert {"returns", "refunds", "disputes"} <= modules
    assert len(CLASSES) > 30


def test_each_slug_is_declared_by_one_class():
    declared: dict[str, list[str]] = defaultdict(list)
    for cls in CLASSES:
        if "slug" in vars(cls):  # subclasses that only rename keep their parent's kind and type
            declared[cls.slug or ""].append(f"{cls.__module__}.{cls.__qualname__}")
    shared_slugs = {slug: names for slug, names in declared.items() if len(names) > 1}
    assert not shared_slugs, f"one problem type per kind of error; these slugs are declared twice: {shared_slugs}"


def test_each_type_has_one_status():
    statuses: dict[str, set[int]] = defaultdict(set)
    for cls in CLASSES:
        statuses[problem_type(cls.slug)].add(cls.status)
    for status, slug in _STATUS_SLUGS.items():  # what routing errors (404, 405, ...) answer with
        statuses[problem_type(slug)].add(status)
    mixed = {kind: codes for kind, codes in statuses.items() if len(codes) > 1}
    assert not mixed


def test_a_422_cannot_be_raised_without_errors():
    with pytest.raises(TypeError):
        Unprocessable("no fields named", errors=[])
    for cls in CLASSES:
        if cls.status != 422 or "__init__" not in vars(cls):
            continue  # Unprocessable's own __init__ requires `errors`
        source = inspect.getsource(cls.__init__)
        assert "errors=" in source or "field_problems(" in source, f"{cls.__qualname__} must pass `errors`"


@pytest.mark.parametrize("cls", [c for c in CLASSES if c.status == 422], ids=lambda c: c.__qualname__)
def test_every_422_is_an_unprocessable(cls):
    assert issubclass(cls, Unprocessable)
