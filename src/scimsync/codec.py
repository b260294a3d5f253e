"""The one converter between SCIM JSON and scimsync models.

:func:`to_scim` turns a model into a JSON-ready ``dict``; :func:`from_scim` turns a
``dict`` into a model; :func:`to_json` and :func:`from_json` do the same with bytes.
All of them go through one :class:`cattrs.Converter` that this module owns
(:data:`converter`, built by :func:`make_converter`), never cattrs' global one.

What goes in is what real providers send:

- attribute names in any case (RFC 7643 §2.1): ``UserName`` is ``userName``;
- booleans as ``true`` or as the strings ``"True"``/``"false"`` (cattrs' default hook
  would read ``"false"`` as ``True``; ours reads it as ``False``);
- ``$ref``, extension URN keys (``urn:...:enterprise:2.0:User``), ``null`` for unset;
- attributes nobody declared: kept in ``extra`` (or ``extensions`` for URN keys) and
  written back out, so a round-trip never drops data;
- datetimes as xsd:dateTime.

What comes out: ``None`` omitted, ``schemas`` filled in from the model and its
extensions, and with ``request=True`` the attributes the schema table marks readOnly
(``id``, ``meta``, ``groups``, the manager's ``displayName``) left out.

A malformed payload raises :class:`~scimsync.errors.ResourceValidationError` listing
every bad attribute path and why; never a bare cattrs, attrs or ``KeyError`` traceback.
"""

from __future__ import annotations

import json
import sys
import types
import typing
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar, cast, get_args, get_origin, overload

import attrs
import cattrs

from .errors import ResourceValidationError
from .models import (
    ENTERPRISE_USER_SCHEMA,
    BulkOperationResult,
    EnterpriseUser,
    Error,
    Resource,
    User,
    scim_name,
)
from .schema import CORE_SCHEMAS

__all__ = [
    "converter",
    "from_json",
    "from_scim",
    "make_converter",
    "register_extension",
    "registered_extensions",
    "to_json",
    "to_scim",
]

T = TypeVar("T")

_NoneType = type(None)


class _InvalidError(Exception):
    """Problems found while structuring, as ``(path suffix, reason)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__(problems)


def _problems(exc: Exception, prefix: str) -> list[tuple[str, str]]:
    if isinstance(exc, _InvalidError):
        return [(prefix + path, reason) for path, reason in exc.problems]
    if isinstance(exc, cattrs.BaseValidationError):
        # A hook cattrs generated (for a class it was handed directly): keep its paths.
        return [(prefix, message) for message in cattrs.transform_error(exc, path="")]
    return [(prefix, str(exc) or type(exc).__name__)]


# -- primitives -----------------------------------------------------------------------------


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "…"


def _structure_str(value: object, _: object) -> str:
    if type(value) is str:
        return value
    # Numbers for strings happen in the wild (employeeNumber: 1234); nothing else does.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise _InvalidError([("", f"expected a string, got {_describe(value)}")])


def _structure_bool(value: object, _: object) -> bool:
    if value is True or value is False:
        return value
    if isinstance(value, str):
        folded = value.strip().lower()
        if folded == "true":
            return True
        if folded == "false":
            return False
    raise _InvalidError([("", f"expected a boolean, got {_describe(value)}")])


def _structure_int(value: object, _: object) -> int:
    if type(value) is int:
        return value
    raise _InvalidError([("", f"expected an integer, got {_describe(value)}")])


def _structure_int_or_numeric_string(value: object, _: object) -> int:
    # RFC 7644 §3.12 writes error and bulk statuses as strings ("400").
    if type(value) is int:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise _InvalidError([("", f"expected an HTTP status, got {_describe(value)}")])


def _structure_datetime(value: object, _: object) -> datetime:
    if isinstance(value, str):
        text = value.strip()
        if sys.version_info < (3, 11) and text.endswith(("Z", "z")):  # pragma: no cover
            text = text[:-1] + "+00:00"
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    raise _InvalidError([("", f"expected an xsd:dateTime, got {_describe(value)}")])


def _unstructure_datetime(value: datetime) -> str:
    if value.tzinfo is not None and value.utcoffset() == timezone.utc.utcoffset(None):
        return value.replace(tzinfo=None).isoformat() + "Z"
    return value.isoformat()


def _passthrough(value: Any, _: object) -> Any:
    return value


# -- classes --------------------------------------------------------------------------------

# Fields whose wire form differs from their Python type.
_STATUS_FIELDS = frozenset({(Error, "status"), (BulkOperationResult, "status")})
_FIELD_HOOKS: dict[tuple[type, str], Callable[[Any, Any], Any]] = dict.fromkeys(
    _STATUS_FIELDS, _structure_int_or_numeric_string
)

# Extension URN (lower-cased) -> registered attrs class, for resources of any type.
_EXTENSIONS: dict[str, tuple[str, type]] = {}


def register_extension(urn: str, cls: type) -> None:
    """Read and write the extension ``urn`` as instances of the attrs class ``cls``.

    Afterwards ``resource.extensions[urn]`` is a ``cls`` (attribute names camelCased
    on the wire, as for the built-in models) instead of a ``dict``::

        @attrs.frozen(kw_only=True)
        class Badge:
            number: str | None = None

        register_extension("urn:example:params:scim:schemas:extension:badge:2.0:User", Badge)
    """
    if not attrs.has(cls):
        raise TypeError(f"{cls!r} is not an attrs class")
    _EXTENSIONS[urn.lower()] = (urn, cls)


def registered_extensions() -> dict[str, type]:
    """The extensions :func:`register_extension` registered: URN (as registered) -> class."""
    return dict(_EXTENSIONS.values())


def _resolve_field_types(cls: type, args: tuple[Any, ...]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    params = getattr(cls, "__parameters__", ())
    substitutions = dict(zip(params, args, strict=False)) if args else dict.fromkeys(params, Any)
    out: dict[str, Any] = {}
    for field in attrs.fields(cls):
        hint = hints[field.name]
        if substitutions:
            hint = _substitute(hint, substitutions)
        out[field.name] = hint
    return out


def _substitute(hint: Any, substitutions: Mapping[Any, Any]) -> Any:
    if isinstance(hint, TypeVar):
        return substitutions.get(hint, Any)
    origin, args = get_origin(hint), get_args(hint)
    if not args or origin is None:
        return hint
    new_args = tuple(_substitute(a, substitutions) for a in args)
    if origin is tuple:
        return tuple[new_args]  # type: ignore[valid-type]
    if origin in (typing.Union, types.UnionType):
        return typing.Union[new_args]  # noqa: UP007
    return origin[new_args]


def _strip_optional(hint: Any) -> Any:
    args = get_args(hint)
    if args and _NoneType in args:
        rest = [a for a in args if a is not _NoneType]
        if len(rest) == 1:
            return rest[0]
    return hint


class _StructurePlan:
    """How to read one attrs class: SCIM key -> (field name, hook, type)."""

    def __init__(self, conv: cattrs.Converter, hint: Any) -> None:
        cls = get_origin(hint) or hint
        self.cls = cls
        self.is_resource = issubclass(cls, Resource)
        self.schema_urn: str = getattr(cls, "schema_urn", "")
        self.field_names = {f.name for f in attrs.fields(cls)}
        self.has_extra = "extra" in self.field_names
        types = _resolve_field_types(cls, get_args(hint))
        self.exact: dict[str, tuple[str, Callable[[Any, Any], Any], Any]] = {}
        for field in attrs.fields(cls):
            if field.name in ("extensions", "extra"):
                continue
            field_type = _strip_optional(types[field.name])
            hook = _FIELD_HOOKS.get((cls, field.name)) or _hook_for(conv, field_type)
            self.exact[scim_name(field.name)] = (field.name, hook, field_type)
        if issubclass(cls, User):
            self.exact[ENTERPRISE_USER_SCHEMA] = self.exact.pop("enterprise")
        self.folded = {key.lower(): value for key, value in self.exact.items()}

    def structure(self, data: Any, _: object) -> Any:
        if not isinstance(data, Mapping):
            raise _InvalidError([("", f"expected an object, got {_describe(data)}")])
        kwargs: dict[str, Any] = {}
        problems: list[tuple[str, str]] = []
        extensions: dict[str, Any] | None = None
        extra: dict[str, Any] | None = None
        exact, folded = self.exact, self.folded
        for key, value in data.items():
            target = exact.get(key)
            if target is None and isinstance(key, str):
                target = folded.get(key.lower())
            if target is not None:
                if value is None:  # RFC 7643 §2.5: null is "unassigned"
                    continue
                name, hook, field_type = target
                try:
                    kwargs[name] = hook(value, field_type)
                except Exception as exc:
                    problems.extend(_problems(exc, "." + key))
                continue
            folded_key = key.lower() if isinstance(key, str) else ""
            if folded_key == "schemas" and self.schema_urn:
                problem = self._check_schemas(value)
                if problem:
                    problems.append((".schemas", problem))
            elif self.is_resource and folded_key.startswith("urn:"):
                if folded_key == self.schema_urn.lower():
                    # Core attributes written under their own URN: merge them in.
                    try:
                        core = self.structure(value, None)
                    except _InvalidError as exc:
                        problems.extend(_problems(exc, "." + key))
                    else:
                        kwargs.update(
                            (f.name, getattr(core, f.name))
                            for f in attrs.fields(self.cls)
                            if getattr(core, f.name) != f.default
                        )
                    continue
                if value is None:
                    continue
                registered = _EXTENSIONS.get(folded_key)
                if extensions is None:
                    extensions = {}
                if registered is not None:
                    try:
                        extensions[registered[0]] = converter.structure(value, registered[1])
                    except Exception as exc:
                        problems.extend(_problems(exc, "." + key))
                else:
                    extensions[key] = value
            elif self.has_extra:
                if extra is None:
                    extra = {}
                extra[key] = value
        if problems:
            raise _InvalidError(problems)
        if extensions:
            kwargs["extensions"] = extensions
        if extra:
            kwargs["extra"] = extra
        try:
            return self.cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise _InvalidError([("", _constructor_problem(exc))]) from exc

    def _check_schemas(self, value: Any) -> str | None:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return f"expected a list of URNs, got {_describe(value)}"
        if value and self.schema_urn.lower() not in (v.lower() for v in value):
            return f"{self.schema_urn} is missing (the payload names {value!r})"
        return None


def _constructor_problem(exc: Exception) -> str:
    text = str(exc)
    marker = "missing 1 required keyword-only argument: "
    if marker in text:
        name = text.split(marker, 1)[1].strip("'")
        return f"required attribute {scim_name(name)!r} is missing"
    if "missing" in text and "required keyword-only arguments" in text:
        return "required attributes are missing: " + text.split(":", 1)[1].strip()
    return text


def _sequence_hook(item_hook: Callable[[Any, Any], Any], item_type: Any) -> Callable[..., Any]:
    def structure_sequence(value: Any, _: object) -> tuple[Any, ...]:
        if not isinstance(value, list):
            # One value where a list belongs (some providers do this): a list of one.
            value = list(value) if isinstance(value, (tuple, set, frozenset)) else [value]
        out = []
        problems: list[tuple[str, str]] = []
        for index, item in enumerate(value):
            try:
                out.append(item_hook(item, item_type))
            except Exception as exc:
                problems.extend(_problems(exc, f"[{index}]"))
        if problems:
            raise _InvalidError(problems)
        return tuple(out)

    return structure_sequence


def _mapping_hook(value: Any, _: object) -> Any:
    if not isinstance(value, Mapping):
        raise _InvalidError([("", f"expected an object, got {_describe(value)}")])
    return dict(value)


def _hook_for(conv: cattrs.Converter, hint: Any) -> Callable[[Any, Any], Any]:
    if hint is Any or hint is object:
        return _passthrough
    origin = get_origin(hint)
    if origin is tuple:
        args = get_args(hint)
        item = _strip_optional(args[0]) if args else Any
        return _sequence_hook(_hook_for(conv, item), item)
    if origin in (Mapping, dict) or hint in (dict, Mapping):
        return _mapping_hook
    if hint is str:
        return _structure_str
    if hint is bool:
        return _structure_bool
    if hint is int:
        return _structure_int
    if hint is datetime:
        return _structure_datetime
    if _is_attrs(hint) and hint in _PLANNING:
        # A recursive model (SchemaAttribute.subAttributes): look the hook up when called.
        return conv.structure
    return conv.get_structure_hook(hint)


# Classes whose hooks are being generated right now, to break recursion.
_PLANNING: set[Any] = set()


# -- unstructuring ----------------------------------------------------------------------------


def _unstructure_plan(conv: cattrs.Converter, hint: Any) -> Callable[[Any], dict[str, Any]]:
    """Generate a function writing one attrs class as a SCIM dict (None omitted)."""
    cls = get_origin(hint) or hint
    types = _resolve_field_types(cls, get_args(hint))
    namespace: dict[str, Any] = {"_schemas_of": _schemas_of}
    lines = [f"def unstructure_{cls.__name__}(o):"]
    # Extensions sit inside a resource, whose "schemas" already names them.
    schema_urn = "" if issubclass(cls, EnterpriseUser) else getattr(cls, "schema_urn", "")
    if issubclass(cls, Resource):
        lines.append("    out = {'schemas': _schemas_of(o)}")
    elif schema_urn:
        namespace["_schema_urn"] = schema_urn
        lines.append("    out = {'schemas': [_schema_urn]}")
    else:
        lines.append("    out = {}")
    for index, field in enumerate(attrs.fields(cls)):
        if field.name in ("extensions", "extra"):
            continue
        key = scim_name(field.name)
        if field.name == "enterprise" and issubclass(cls, User):
            key = ENTERPRISE_USER_SCHEMA
        field_type = _strip_optional(types[field.name])
        if (cls, field.name) in _STATUS_FIELDS:
            value_expr = "str(v)"  # RFC 7644 §3.12: "status": "400"
        else:
            value_expr = _unstructure_expr(conv, field_type, "v", namespace, index)
        lines.append(f"    v = o.{field.name}")
        lines.append("    if v is not None:")
        lines.append(f"        out[{key!r}] = {value_expr}")
    names = {f.name for f in attrs.fields(cls)}
    if "extensions" in names:
        namespace["_unstructure_extension"] = _unstructure_extension
        lines.append("    if o.extensions:")
        lines.append("        for k, v in o.extensions.items():")
        lines.append("            out[k] = _unstructure_extension(v)")
    if "extra" in names:
        lines.append("    if o.extra:")
        lines.append("        for k, v in o.extra.items():")
        lines.append("            out.setdefault(k, v)")
    lines.append("    return out")
    exec("\n".join(lines), namespace)  # noqa: S102 - generated from attrs fields only
    return cast("Callable[[Any], dict[str, Any]]", namespace[f"unstructure_{cls.__name__}"])


def _unstructure_expr(
    conv: cattrs.Converter, hint: Any, var: str, namespace: dict[str, Any], index: int
) -> str:
    if hint in (str, bool, int, float):
        return var
    if hint is Any or hint is object:
        # Whatever it holds at run time: plain JSON passes through, models convert.
        namespace["_dynamic"] = conv.unstructure
        return f"_dynamic({var})"
    if hint is datetime:
        namespace["_dt"] = _unstructure_datetime
        return f"_dt({var})"
    origin = get_origin(hint)
    if origin is tuple:
        args = get_args(hint)
        item = _strip_optional(args[0]) if args else Any
        inner = _unstructure_expr(conv, item, "x", namespace, index)
        return f"[{inner} for x in {var}]" if inner != "x" else f"list({var})"
    if origin in (Mapping, dict) or hint in (dict, Mapping):
        return f"dict({var})"
    hook_name = f"_h{index}_{len(namespace)}"
    if _is_attrs(hint) and hint in _PLANNING:
        namespace[hook_name] = conv.unstructure  # recursive model: dispatch when called
    else:
        namespace[hook_name] = conv.get_unstructure_hook(hint)
    return f"{hook_name}({var})"


def _schemas_of(resource: Resource) -> list[str]:
    schemas = [resource.schema_urn]
    if isinstance(resource, User) and resource.enterprise is not None:
        schemas.append(ENTERPRISE_USER_SCHEMA)
    if resource.extensions:
        schemas.extend(resource.extensions)
    return schemas


def _unstructure_extension(value: Any) -> Any:
    if attrs.has(type(value)):
        return converter.unstructure(value)
    return value


# -- the converter ----------------------------------------------------------------------------


def _is_attrs(hint: Any) -> bool:
    cls = get_origin(hint) or hint
    return isinstance(cls, type) and attrs.has(cls)


def _planning(hint: Any, build: Callable[[], T]) -> T:
    _PLANNING.add(hint)
    try:
        return build()
    finally:
        _PLANNING.discard(hint)


def make_converter() -> cattrs.Converter:
    """Build a converter with scimsync's SCIM rules (see the module docstring).

    The library uses the one in :data:`converter`; build another only to customise it.
    """
    conv = cattrs.Converter(forbid_extra_keys=False)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(datetime, _structure_datetime)
    conv.register_unstructure_hook(datetime, _unstructure_datetime)
    conv.register_structure_hook_factory(
        _is_attrs, lambda hint: _planning(hint, lambda: _StructurePlan(conv, hint).structure)
    )
    conv.register_unstructure_hook_factory(
        _is_attrs, lambda hint: _planning(hint, lambda: _unstructure_plan(conv, hint))
    )
    return conv


converter: cattrs.Converter = make_converter()
"""The converter every part of scimsync uses."""


# -- request mode: readOnly attributes from the schema table ----------------------------------


def _read_only_paths(cls: type) -> tuple[tuple[str, ...], ...]:
    resource_type = getattr(cls, "resource_type_name", "")
    if not resource_type:
        return ()
    paths: list[tuple[str, ...]] = []
    for urn, spec in CORE_SCHEMAS.attributes(resource_type):
        prefix = (urn,) if urn else ()
        if spec.read_only:
            paths.append((*prefix, spec.name))
            continue
        paths.extend(
            (*prefix, spec.name, sub.name) for sub in spec.sub_attributes.values() if sub.read_only
        )
    return tuple(paths)


_READ_ONLY_CACHE: dict[type, tuple[tuple[str, ...], ...]] = {}


def _drop_read_only(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    paths = _READ_ONLY_CACHE.get(cls)
    if paths is None:
        paths = _READ_ONLY_CACHE[cls] = _read_only_paths(cls)
    for path in paths:
        *parents, last = path
        node: Any = data
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
        elif isinstance(node, list):  # multi-valued complex: drop the sub-attribute in each
            for item in node:
                if isinstance(item, dict):
                    item.pop(last, None)
    return data


# -- the public functions ------------------------------------------------------------------------


def to_scim(obj: Any, *, request: bool = False) -> dict[str, Any]:
    """Return the SCIM JSON object (a ``dict``) for a model.

    With ``request=True``, attributes a client must not send (readOnly in the schema
    table: ``id``, ``meta``, ``groups``, ...) are left out.
    """
    data: object = converter.unstructure(obj)
    if not isinstance(data, dict):
        raise TypeError(f"{type(obj).__name__} is not a SCIM model")
    return _drop_read_only(type(obj), data) if request else data


@overload
def from_scim(data: Any, cls: type[T]) -> T: ...
@overload
def from_scim(data: Any, cls: Any) -> Any: ...
def from_scim(data: Any, cls: Any) -> Any:
    """Read the SCIM JSON object ``data`` as a ``cls`` (``User``, ``ListResponse[User]``...).

    Raises :class:`~scimsync.errors.ResourceValidationError` listing every problem.
    """
    try:
        return converter.structure(data, cls)
    except _InvalidError as exc:
        raise ResourceValidationError(
            f"invalid {_type_name(cls)}", [f"${path}: {reason}" for path, reason in exc.problems]
        ) from None
    except cattrs.BaseValidationError as exc:
        raise ResourceValidationError(
            f"invalid {_type_name(cls)}", cattrs.transform_error(exc)
        ) from None


def _type_name(cls: Any) -> str:
    origin = get_origin(cls)
    if origin is not None:
        args = ", ".join(getattr(a, "__name__", str(a)) for a in get_args(cls))
        return f"{origin.__name__}[{args}]"
    return getattr(cls, "__name__", str(cls))


def to_json(obj: Any, *, request: bool = False) -> bytes:
    """Return the UTF-8 JSON bytes of a model (see :func:`to_scim`)."""
    return json.dumps(
        to_scim(obj, request=request), ensure_ascii=False, separators=(",", ":")
    ).encode()


def from_json(raw: bytes | str, cls: type[T]) -> T:
    """Parse JSON bytes or text as a ``cls`` (see :func:`from_scim`)."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ResourceValidationError(
            f"invalid {_type_name(cls)}", [f"$: not JSON ({exc})"]
        ) from None
    return from_scim(data, cls)
