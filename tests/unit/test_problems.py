"""Domain errors carry no HTTP: one table at the edge gives each its status and problem type."""

from __future__ import annotations

import pkgutil
from importlib import import_module

import proxy
from proxy.errors import BadParameter, LoupeError, Overloaded, SourceNotFound
from proxy.server.bodies import NestingTooDeep
from proxy.server.problems import PROBLEMS, problem_of
from proxy.stores.base import ReviewConflict


def _every_error_class() -> set[type[LoupeError]]:
    for module in pkgutil.walk_packages(proxy.__path__, "proxy."):
        if module.name.endswith("__main__"):
            continue
        import_module(module.name)
    found: set[type[LoupeError]] = set()
    todo: list[type[LoupeError]] = [LoupeError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_no_domain_error_knows_its_http_status() -> None:
    for cls in _every_error_class():
        assert not hasattr(cls, "status"), cls
        assert not hasattr(cls, "slug"), cls


def test_every_error_class_has_its_own_problem() -> None:
    """A new class is listed on purpose, not answered by an ancestor's entry unnoticed."""
    missing = {
        cls.__qualname__
        for cls in _every_error_class()
        if cls not in PROBLEMS and cls.__module__.startswith("proxy.")
    }
    assert missing == set(), missing


def test_the_table_answers_as_before() -> None:
    assert problem_of(BadParameter("x")) == (400, "bad-parameter", "Bad parameter")
    assert problem_of(NestingTooDeep("x")).slug == "json-too-deep"
    assert problem_of(NestingTooDeep("x")).status == 400
    assert problem_of(SourceNotFound("x")).status == 404
    assert problem_of(ReviewConflict("x")).status == 409
    assert problem_of(Overloaded("x")) == (503, "overloaded", "Server overloaded")


def test_an_unlisted_subclass_answers_as_its_ancestor() -> None:
    class Odd(SourceNotFound):
        pass

    assert problem_of(Odd("x")) == PROBLEMS[SourceNotFound]
