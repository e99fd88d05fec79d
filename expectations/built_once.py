"""GX's expectation classes, each with its configuration built once per object.

GX 1.24 rebuilds an expectation's configuration (a pydantic `dict()`, a camel-to-snake name,
a new `ExpectationConfiguration`) on every read of `Expectation.configuration`, and reads it
once per domain key and success key of every metric it plans: 30% of a 1,000-position
validation (py-spy), nearly all of it per run, not per row (issue 14, goal 3). An expectation
is an immutable model whose configuration depends on its fields alone, so one build serves
every read. Only the objects GX makes for a run keep theirs (they are bound to the run's batch:
`batch_id` is set): GX makes them from the suite's configurations after substituting that
run's parameters into them, in place, so a suite's own expectation builds a new one on every
read, or the first run's parameters would stay for good.

These are GX's documented way to customise an expectation (a subclass); they register under
their own type names (`posguard_expect_...`), so GX's classes stay as they were for any
other user in the process, and rendering (Data Docs) is inherited.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast

import great_expectations.expectations as gxe
from great_expectations.compatibility.pydantic import PrivateAttr
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

E = TypeVar("E", bound=gxe.Expectation)


def built_once(base: type[E]) -> type[E]:
    """`base` with its configuration built on first read and kept by the object."""
    getter = inspect.getattr_static(base, "configuration")
    if not isinstance(getter, property) or getter.fget is None:
        raise TypeError(f"{base.__name__}.configuration is not a property: GX changed")
    build: Callable[[Any], ExpectationConfiguration] = getter.fget

    def configuration(self: Any) -> ExpectationConfiguration:
        if self.batch_id is None:
            # A suite's own expectation: GX substitutes a run's parameters into the
            # configuration read from it in place, so each run must get a new one.
            return build(self)
        built: ExpectationConfiguration | None = self._built
        if built is None:
            built = self._built = build(self)
        return built

    name = f"Posguard{base.__name__}"
    namespace = {
        "__module__": __name__,
        "__qualname__": name,
        "__doc__": base.__doc__,
        "_built": PrivateAttr(default=None),
        "configuration": property(configuration),
    }
    return cast(type[E], type(name, (base,), namespace))


NotNull = built_once(gxe.ExpectColumnValuesToNotBeNull)
Between = built_once(gxe.ExpectColumnValuesToBeBetween)
InSet = built_once(gxe.ExpectColumnValuesToBeInSet)
NotInSet = built_once(gxe.ExpectColumnValuesToNotBeInSet)
PairAGreaterThanB = built_once(gxe.ExpectColumnPairValuesAToBeGreaterThanB)
CompoundUnique = built_once(gxe.ExpectCompoundColumnsToBeUnique)
Unique = built_once(gxe.ExpectColumnValuesToBeUnique)
