"""JSON Schemas of the types typed handlers declare, for the OpenAPI document.

msgspec describes what msgspec decodes and encodes (Structs, dataclasses, TypedDicts, scalars,
enums, containers), so a schema says exactly what the binder accepts: both read the same
annotation with the same library. A type msgspec cannot describe (a pydantic model, or a
container of them) goes through pydantic, which validates it. Named models land in
``components/schemas`` and are referenced with ``$ref``.

Types are collected first and described all at once, at ``finish()``: one model named by
several routes becomes one component, and msgspec tells apart two models of the same name.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, Final

import msgspec

REF_PREFIX: Final = "#/components/schemas/"

# Which side of the wire a type is on: a request (what is validated) or a response (what is
# encoded). Only pydantic describes the two differently (computed fields, serializers).
VALIDATION: Final = "validation"
SERIALIZATION: Final = "serialization"

Schema = dict[str, Any]
Refine = Callable[[Schema], Schema]


class SchemaConflict(ValueError):
    """Two different schemas want the same component name."""


class _Wanted:
    __slots__ = ("type", "mode", "slot", "refine")

    def __init__(self, type_: Any, mode: str, slot: Schema, refine: Refine | None) -> None:
        self.type = type_
        self.mode = mode
        self.slot = slot
        self.refine = refine


class Schemas:
    """Hands out schema slots (empty dicts placed in the document), fills them at ``finish()``."""

    def __init__(self) -> None:
        self._wanted: list[_Wanted] = []
        self.components: dict[str, Schema] = {}

    def of(self, type_: Any, mode: str = VALIDATION, refine: Refine | None = None) -> Schema:
        """A dict that ``finish()`` fills with the schema of ``type_`` (passed through
        ``refine`` when given, for what the type alone does not say: a default, a router bound)."""
        slot: Schema = {}
        self._wanted.append(_Wanted(type_, mode, slot, refine))
        return slot

    def add_component(self, name: str, schema: Schema) -> str:
        """Put ``schema`` in the components under ``name`` (again: a no-op); returns its ``$ref``."""
        self._merge({name: schema}, "Cello")
        return REF_PREFIX + name

    def finish(self) -> None:
        by_msgspec: list[_Wanted] = []
        by_pydantic: list[_Wanted] = []
        for wanted in self._wanted:
            kind = _describer(wanted.type)
            if kind == "msgspec":
                by_msgspec.append(wanted)
            elif kind == "pydantic":
                by_pydantic.append(wanted)
            else:
                # An annotation neither library describes (the handler encodes it with its own
                # to_dict(), say): documented as any JSON value rather than refused.
                self._fill(wanted, {})
        if by_msgspec:
            schemas, components = msgspec.json.schema_components(
                [wanted.type for wanted in by_msgspec], ref_template=REF_PREFIX + "{name}"
            )
            self._merge(components, "msgspec")
            for wanted, schema in zip(by_msgspec, schemas):
                self._fill(wanted, schema)
        if by_pydantic:
            self._pydantic(by_pydantic)
        self._wanted.clear()

    def _pydantic(self, wanted: list[_Wanted]) -> None:
        adapter = _pydantic().TypeAdapter
        inputs = [(index, item.mode, adapter(item.type)) for index, item in enumerate(wanted)]
        # One call for all: a model named by several types becomes one component.
        schemas, definitions = adapter.json_schemas(inputs, ref_template=REF_PREFIX + "{model}")
        self._merge(definitions.get("$defs", {}), "pydantic")
        for index, item in enumerate(wanted):
            self._fill(item, schemas[(index, item.mode)])

    def _merge(self, components: dict[str, Schema], origin: str) -> None:
        for name, schema in components.items():
            known = self.components.setdefault(name, schema)
            if known != schema:
                raise SchemaConflict(
                    f"two different schemas are named {name!r} in the OpenAPI document ({origin} describes the "
                    "second): rename one of the types"
                )

    @staticmethod
    def _fill(wanted: _Wanted, schema: Schema) -> None:
        wanted.slot.update(wanted.refine(schema) if wanted.refine is not None else schema)


def _describer(type_: Any) -> str:
    """Which library describes ``type_``: "msgspec", "pydantic", or "" (neither)."""
    try:
        msgspec.json.schema(type_)
        return "msgspec"
    except (TypeError, ValueError):
        pass
    pydantic = _pydantic()
    if pydantic is not None:
        try:
            pydantic.TypeAdapter(type_).json_schema()
            return "pydantic"
        except (pydantic.PydanticSchemaGenerationError, TypeError, ValueError):
            pass
    return ""


def _pydantic() -> Any:
    """pydantic when the app has loaded it (its models are the only reason to), else None.
    Untyped on purpose: pydantic is optional, so type-checking cannot rely on its stubs."""
    return sys.modules.get("pydantic")


def json_default(value: Any) -> Any:
    """``value`` as JSON for a schema's ``default``, or ``msgspec.UNSET`` when it has no JSON form."""
    try:
        return msgspec.to_builtins(value)
    except (TypeError, ValueError):
        return msgspec.UNSET
