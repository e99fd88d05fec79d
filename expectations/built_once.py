"""GX's expectation classes, each with its configuration built once per object.

GX 1.24 rebuilds an expectation's configuration (a pydantic `dict()`, a camel-to-snake name,
a new `ExpectationConfiguration`) on every read of `Expectation.configuration`, and reads it
once per domain key and success key of every metric it plans: 30% of a 1,000-position
validation (py-spy), nearly all of it per run, not per row (issue 14, goal 3). The
configuration depends on the expectation's fields alone, so one build serves every read until
a field is set again (which drops it). Only the objects GX makes for a run keep theirs: they
are bound to the run's batch (`batch_id` set) and made from the suite's configurations once
that run's parameters are substituted. A suite's own expectation builds a new one on every
read, and so does one still naming a `$PARAMETER`: GX substitutes parameters into the
configuration it read, in place, and a kept one would keep the first run's values for good.

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


def built_once(base: type[E], name: str) -> type[E]:
    """`base` with its configuration built on first read and kept by the object; `name` is
    the module attribute it is bound to (so that it pickles)."""
    getter = inspect.getattr_static(base, "configuration")
    if not isinstance(getter, property) or getter.fget is None:
        raise TypeError(f"{base.__name__}.configuration is not a property: GX changed")
    build: Callable[[Any], ExpectationConfiguration] = getter.fget

    def configuration(self: Any) -> ExpectationConfiguration:
        kept: tuple[int, ExpectationConfiguration] | None = self._built
        # Kept by this object only: pydantic's copies carry private attributes along.
        if kept is not None and kept[0] == id(self):
            return kept[1]
        built = build(self)
        # A suite's own expectation (no batch) or one still naming a suite parameter: GX
        # substitutes a run's parameters into the configuration read from it, in place.
        if self.batch_id is not None and not _names_a_parameter(built.kwargs):
            self._built = (id(self), built)
        return built

    def setattr_(self: Any, attribute: str, value: Any) -> None:
        base.__setattr__(self, attribute, value)
        if attribute != "_built":
            base.__setattr__(self, "_built", None)  # a field changed: build it again

    namespace = {
        "__module__": __name__,
        "__qualname__": name,
        "__doc__": base.__doc__,
        "_built": PrivateAttr(default=None),
        "configuration": property(configuration),
        "__setattr__": setattr_,
    }
    # GX registers an expectation by its class name: posguard's own, beside GX's.
    return cast(type[E], type(f"Posguard{base.__name__}", (base,), namespace))


def _names_a_parameter(value: Any) -> bool:
    if isinstance(value, dict):
        return "$PARAMETER" in value or any(_names_a_parameter(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_names_a_parameter(v) for v in value)
    return False


NotNull = built_once(gxe.ExpectColumnValuesToNotBeNull, "NotNull")
Between = built_once(gxe.ExpectColumnValuesToBeBetween, "Between")
InSet = built_once(gxe.ExpectColumnValuesToBeInSet, "InSet")
NotInSet = built_once(gxe.ExpectColumnValuesToNotBeInSet, "NotInSet")
PairAGreaterThanB = built_once(gxe.ExpectColumnPairValuesAToBeGreaterThanB, "PairAGreaterThanB")
CompoundUnique = built_once(gxe.ExpectCompoundColumnsToBeUnique, "CompoundUnique")
Unique = built_once(gxe.ExpectColumnValuesToBeUnique, "Unique")
