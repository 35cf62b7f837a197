"""Plugin tools inside a worker: load an entry point, describe it with a JSON schema, call it.

A plugin declares tools as ``openhands.tools`` entry points; the host passes each one's
``module:object`` reference, and :func:`load_tool` imports it. The object is either

- a plain function with type hints and a docstring: :func:`schema_from_function` derives its
  input schema from the signature and its description from the docstring; or
- an object with ``name``, ``description`` and ``input_schema`` (a JSON-schema dict) and a call
  method: ``call(**arguments)`` if it has one, else ``__call__(**arguments)``.

Either may be ``async``: a call whose result is awaitable is run with :func:`asyncio.run`.

This module runs in plugin workers (``python -I -S -B``, Python 3.10 to 3.13): stdlib only, and
its import stays cheap. It imports nothing but :mod:`sys` at module level; :mod:`inspect` and
:mod:`typing` load when a function's schema is derived, :mod:`asyncio` only when an async tool
runs. For the same reason :class:`Tool` is a plain class shaped like a dataclass (same fields,
constructor, ``==`` and ``repr``) rather than a ``@dataclass``: importing :mod:`dataclasses`
costs tens of milliseconds at a worker's cold start.

Choices made here:

- ``**kwargs`` is allowed and becomes ``additionalProperties`` (its annotation's schema, or
  ``true``); ``*args`` and positional-only parameters are refused (:class:`ToolLoadError`),
  since arguments arrive by name. An entry point naming a class is refused too (export an
  instance, or a function).
- A function without a docstring has the description ``""``.
- A parameter whose default is ``None`` accepts ``null`` whatever its annotation says (as
  ``typing.get_type_hints`` did implicitly before Python 3.11), so schemas agree across versions.
- An annotation that cannot be resolved (a name imported only under ``TYPE_CHECKING``), or a type
  JSON cannot describe (``datetime``, ``Callable``, a class), becomes ``{}``: any value.
- :meth:`Tool.call` hands a function the types its annotations ask for where JSON has none:
  Enum members from their values, dataclasses from objects, tuples and sets from arrays, and
  ``bytes`` from base64 text (the schema says ``"contentEncoding": "base64"``; a host that sends
  msgpack binary passes bytes through). :meth:`Tool.validate` itself returns the arguments as
  received. Integral floats (``3.0``) are valid integers and are passed on unchanged.
- The validator treats ``oneOf`` like ``anyOf``; it also knows ``allOf``, ``prefixItems``,
  ``exclusiveMinimum``/``exclusiveMaximum`` and ``pattern``; other keywords are ignored.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Converter = Callable[[Any, str], Any]

__all__ = [
    "ArgumentsError",
    "Tool",
    "ToolLoadError",
    "load_tool",
    "schema_from_function",
    "to_content",
    "validate",
]

# to_content() gives up on nesting deeper than this (the host's unpacker bounds depth too).
_MAX_DEPTH = 56  # the protocol refuses depth > 64; a response wraps the content 3 deep
# msgpack's integer range.
_INT_MIN = -(1 << 63)
_INT_MAX = (1 << 64) - 1
# What a missing annotation looks like to the schema code.
_NO_HINT = object()

_PARAM_SECTIONS = frozenset({
    "args", "arguments", "parameters", "params", "keyword args", "keyword arguments",
    "other parameters", "attributes",
})
_OTHER_SECTIONS = frozenset({
    "returns", "return", "yields", "yield", "raises", "raise", "examples", "example", "notes",
    "note", "warnings", "warning", "warns", "see also", "references", "todo", "methods",
})
_REST_PARAM = ("param", "parameter", "arg", "argument", "key", "keyword")


class ToolLoadError(Exception):
    """A tool's entry point cannot be imported, or does not name a usable tool."""


class ArgumentsError(Exception):
    """Arguments do not match a tool's input schema (one line: where, and what was expected)."""


# ---- the tool ----------------------------------------------------------------------------------


class Tool:
    """A loaded tool: its entry point name, description, input schema, and the object to call."""

    __match_args__ = ("name", "description", "input_schema", "target")
    __hash__ = None  # type: ignore[assignment]  # mutable and compared by value, as a dataclass

    def __init__(self, name: str, description: str, input_schema: dict[str, Any],
                 target: object) -> None:
        self.name = name
        self.description = description
        self.input_schema = input_schema
        self.target = target
        self._conversion: _Conversion | None = None

    def __repr__(self) -> str:
        return (f"{type(self).__qualname__}(name={self.name!r}, "
                f"description={self.description!r}, input_schema={self.input_schema!r}, "
                f"target={self.target!r})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tool) or other.__class__ is not self.__class__:
            return NotImplemented
        return ((self.name, self.description, self.input_schema, self.target)
                == (other.name, other.description, other.input_schema, other.target))

    def spec(self) -> dict[str, Any]:
        """What ``tools.list`` reports: name, description and input schema."""
        return {"name": self.name, "description": self.description,
                "input_schema": self.input_schema}

    def validate(self, arguments: object) -> dict[str, Any]:
        """*arguments* checked against the input schema (defaults not filled in), as a new dict.

        Raises :class:`ArgumentsError` naming the offending field.
        """
        if not isinstance(arguments, dict):
            raise ArgumentsError(f"arguments: expected object, got {_got(arguments)}")
        for key in arguments:
            if not isinstance(key, str):
                raise ArgumentsError(f"arguments: property names must be strings, "
                                     f"got {_got(key)}")
        validate(self.input_schema, arguments)
        return dict(arguments)

    def call(self, arguments: dict[str, Any]) -> object:
        """Validate *arguments*, call the tool with them, and return what it returns.

        An awaitable result (an ``async`` tool) is run to completion with :func:`asyncio.run`.
        Exceptions raised by the tool propagate unchanged.
        """
        kwargs = self.validate(arguments)
        conversion = self._conversion
        if conversion is None:
            conversion = self._conversion = _conversion_for(self.target)
        if conversion.active:
            kwargs = conversion.apply(kwargs)
        result = _invoker(self.target)(**kwargs)
        if hasattr(type(result), "__await__"):
            result = _run_awaitable(result)
        return result


def _is_tool_object(target: object) -> bool:
    return not isinstance(target, type) and hasattr(target, "input_schema")


def _invoker(target: object) -> Callable[..., Any]:
    if _is_tool_object(target):
        call = getattr(target, "call", None)
        if callable(call):
            return call  # type: ignore[no-any-return]
    if not callable(target):
        raise TypeError(f"{type(target).__name__} object is not callable")
    return target


def _run_awaitable(awaitable: Any) -> object:
    import asyncio  # noqa: PLC0415 - costs ~30 ms: only for async tools

    async def main() -> object:
        return await awaitable

    return asyncio.run(main())


# ---- loading -----------------------------------------------------------------------------------


def load_tool(name: str, ref: str) -> Tool:
    """The tool of entry point ``name = ref`` (*ref* is ``module:attr`` or ``module:A.attr``).

    Raises :class:`ToolLoadError`, whose message names the entry point, when the module cannot
    be imported or the object is not a usable tool.
    """
    where = f"entry point '{name} = {ref}'"
    target = _resolve(where, ref)
    if isinstance(target, type):
        raise ToolLoadError(f"{where}: {target.__qualname__} is a class, not a tool (export an "
                            "instance of it, or a function)")
    try:
        is_object = hasattr(target, "input_schema")
    except Exception as exc:
        raise ToolLoadError(f"{where}: reading input_schema failed: "
                            f"{type(exc).__name__}: {exc}") from exc
    if is_object:
        return _object_tool(where, name, target)
    if not callable(target):
        raise ToolLoadError(f"{where}: {type(target).__name__} object is not a tool (expected a "
                            "function, or an object with name, description, input_schema and "
                            "a call method)")
    try:
        description, schema = schema_from_function(target)
    except ToolLoadError as exc:
        raise ToolLoadError(f"{where}: {exc}") from exc.__cause__
    except Exception as exc:
        raise ToolLoadError(f"{where}: cannot derive an input schema: "
                            f"{type(exc).__name__}: {exc}") from exc
    return Tool(name, description, schema, target)


def _resolve(where: str, ref: str) -> object:
    spec = ref.split("[", 1)[0]  # entry point extras ("mod:obj [extra]") do not matter here
    module_name, sep, qualname = (part.strip() for part in spec.partition(":"))
    if not sep or not module_name or not qualname:
        raise ToolLoadError(f"{where}: expected 'module:object'")
    import importlib  # noqa: PLC0415

    try:
        obj: object = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:
        raise ToolLoadError(f"{where}: cannot import module {module_name!r}: "
                            f"{type(exc).__name__}: {exc}") from exc
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ToolLoadError(f"{where}: module {module_name!r} has no attribute "
                                f"{qualname!r}") from None
        except Exception as exc:
            raise ToolLoadError(f"{where}: reading {qualname!r} failed: "
                                f"{type(exc).__name__}: {exc}") from exc
    return obj


def _object_tool(where: str, name: str, target: object) -> Tool:
    try:
        schema = target.input_schema  # type: ignore[attr-defined]
        description = getattr(target, "description", None)
        call = getattr(target, "call", None)
    except Exception as exc:
        raise ToolLoadError(f"{where}: reading the tool's attributes failed: "
                            f"{type(exc).__name__}: {exc}") from exc
    if description is None:
        description = ""
    if not isinstance(description, str):
        raise ToolLoadError(f"{where}: description must be a string, "
                            f"got {type(description).__name__}")
    if not isinstance(schema, dict):
        raise ToolLoadError(f"{where}: input_schema must be a dict (a JSON schema), "
                            f"got {type(schema).__name__}")
    kind = schema.get("type", "object")
    if kind != "object":
        raise ToolLoadError(f"{where}: input_schema must describe an object (arguments are "
                            f"passed by name), not type {kind!r}")
    try:
        schema = _json_data(schema)
    except (TypeError, ValueError) as exc:
        raise ToolLoadError(f"{where}: input_schema is not JSON data: {exc}") from None
    if not callable(call) and not callable(target):
        raise ToolLoadError(f"{where}: {type(target).__name__} object has no call method "
                            "(call(**arguments) or __call__(**arguments))")
    return Tool(name, description, schema, target)


def _json_data(value: object, depth: int = 0) -> Any:
    """A copy of *value* as JSON data (tuples become lists, Enum members their values)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        enum = sys.modules.get("enum")
        if enum is not None and isinstance(value, enum.Enum):
            return _json_data(value.value, depth)
        return value
    if depth > _MAX_DEPTH:
        raise ValueError("nested too deeply")
    if isinstance(value, (list, tuple)):
        return [_json_data(item, depth + 1) for item in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"a key is {type(key).__name__}, not str")
            out[key] = _json_data(item, depth + 1)
        return out
    enum = sys.modules.get("enum")
    if enum is not None and isinstance(value, enum.Enum):
        return _json_data(value.value, depth)
    raise TypeError(f"{type(value).__name__} is not JSON data")


def _try_json(value: object) -> tuple[bool, Any]:
    try:
        return True, _json_data(value)
    except (TypeError, ValueError):
        return False, None


# ---- schemas from functions --------------------------------------------------------------------


def schema_from_function(func: Callable[..., Any]) -> tuple[str, dict[str, Any]]:
    """``(description, input_schema)`` of a function, from its signature and docstring.

    The description is the docstring's text before its first section (``Args:``,
    ``Returns:``, ...); parameter descriptions come from a Google-style ``Args:`` section, a
    NumPy-style ``Parameters`` section or reST ``:param name:`` fields. Raises
    :class:`ToolLoadError` for parameters a JSON schema cannot describe (``*args``,
    positional-only).
    """
    import inspect  # noqa: PLC0415 - loaded only when a function's schema is needed

    label = f"{getattr(func, '__qualname__', None) or type(func).__name__}()"
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise ToolLoadError(f"cannot read the signature of {label}: {exc}") from exc
    hints = _type_hints(func)
    summary, param_docs = _parse_docstring(_docstring(func))
    properties: dict[str, Any] = {}
    required: list[str] = []
    additional: Any = False
    for param in signature.parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            raise ToolLoadError(f"parameter *{param.name} of {label} cannot be described by a "
                                "JSON schema (arguments are passed by name)")
        if param.kind is param.POSITIONAL_ONLY:
            raise ToolLoadError(f"positional-only parameter {param.name!r} of {label} cannot "
                                "be passed by name")
        hint = hints.get(param.name, _NO_HINT)
        if param.kind is param.VAR_KEYWORD:
            additional = _type_schema(hint, frozenset()) or True
            continue
        schema = _type_schema(hint, frozenset())
        if param.name in param_docs:
            schema["description"] = param_docs[param.name]
        if param.default is param.empty:
            required.append(param.name)
        else:
            if param.default is None and not _allows_null(schema):
                schema = {"anyOf": [_strip_annotations(schema), {"type": "null"}],
                          **_annotations_of(schema)}
            known, default = _try_json(param.default)
            if known:
                schema["default"] = default
        properties[param.name] = schema
    return summary, {"type": "object", "properties": properties, "required": required,
                     "additionalProperties": additional}


def _strip_annotations(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != "description"}


def _annotations_of(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k == "description"}


def _allows_null(schema: object) -> bool:
    if not isinstance(schema, dict):
        return schema is True
    kind = schema.get("type")
    if kind is not None:
        return kind == "null" or (isinstance(kind, list) and "null" in kind)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return any(_allows_null(branch) for branch in schema[key])
    return not any(k in schema for k in ("enum", "const"))


def _hint_source(func: object) -> Any:
    """The object whose annotations describe calling *func*."""
    functools = sys.modules.get("functools")
    while functools is not None and isinstance(func, functools.partial):
        func = func.func
    if isinstance(func, type):
        return func.__init__  # type: ignore[misc]
    if not hasattr(func, "__code__") and not hasattr(func, "__func__") and callable(func):
        call = type(func).__call__
        if hasattr(call, "__code__"):
            return call
    return func


def _docstring(func: object) -> str:
    functools = sys.modules.get("functools")
    while functools is not None and isinstance(func, functools.partial):
        func = func.func
    doc = getattr(func, "__doc__", None)
    if not isinstance(doc, str) and not hasattr(func, "__code__") and callable(func):
        doc = type(func).__call__.__doc__
    return doc if isinstance(doc, str) else ""


def _type_hints(func: object) -> dict[str, Any]:
    """The evaluated annotations of *func*; one that cannot be evaluated is left out (any)."""
    import typing  # noqa: PLC0415

    source = _hint_source(func)
    try:
        return typing.get_type_hints(source, include_extras=False)
    except Exception:
        pass
    annotations = getattr(source, "__annotations__", None)
    if not isinstance(annotations, dict):
        return {}
    namespace = dict(getattr(source, "__globals__", None) or {})
    hints: dict[str, Any] = {}
    for name, annotation in annotations.items():
        if isinstance(annotation, str):
            try:
                hints[name] = eval(annotation, namespace)
            except Exception:
                continue
        else:
            hints[name] = annotation
    return hints


def _json_type_of(value: object) -> str | None:
    if value is None:
        return "null"
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string")):
        if isinstance(value, kind):
            return name
    return None


def _enum_like(values: list[Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {}
    kinds = {_json_type_of(v) for v in values}
    if len(kinds) == 1 and None not in kinds:
        schema["type"] = kinds.pop()
    schema["enum"] = values
    return schema


def _type_schema(hint: Any, seen: frozenset[Any]) -> dict[str, Any]:
    """The JSON schema of one annotation (a fresh dict the caller may extend)."""
    import types  # noqa: PLC0415
    import typing  # noqa: PLC0415
    from collections import abc  # noqa: PLC0415

    if hint is _NO_HINT or hint is typing.Any:
        return {}
    if hint is None or hint is type(None):
        return {"type": "null"}
    supertype = getattr(hint, "__supertype__", None)  # typing.NewType
    if supertype is not None:
        return _type_schema(supertype, seen)
    if isinstance(hint, type) and not _generic_alias(hint):
        return _class_schema(hint, seen)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        branches = [_type_schema(arg, seen) for arg in args]
        if any(not branch for branch in branches):
            return {}
        return {"anyOf": branches}
    if origin is typing.Literal:
        try:
            return _enum_like([_json_data(arg) for arg in args])
        except (TypeError, ValueError):
            return {}
    if origin is typing.Annotated:
        return _type_schema(args[0], seen)
    if not isinstance(origin, type):
        return {}
    if issubclass(origin, abc.Mapping):
        schema: dict[str, Any] = {"type": "object"}
        if len(args) == 2:
            values = _type_schema(args[1], seen)
            if values:
                schema["additionalProperties"] = values
        return schema
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _array(_type_schema(args[0], seen))
        if not args:  # bare Tuple (and tuple[()] from Python 3.11 on, alike)
            return {"type": "array"}
        if args == ((),):  # tuple[()] before Python 3.11
            args = ()
        items = [_type_schema(arg, seen) for arg in args]
        return {"type": "array", "prefixItems": items, "minItems": len(items),
                "maxItems": len(items)}
    if issubclass(origin, (str, bytes, bytearray)):
        return _class_schema(origin, seen)
    if issubclass(origin, abc.Iterable):
        return _array(_type_schema(args[0], seen) if args else {})
    return {}


def _generic_alias(hint: object) -> bool:
    """Whether *hint* is ``list[int]`` and the like (which pass for classes on Python 3.10)."""
    import types  # noqa: PLC0415

    return isinstance(hint, types.GenericAlias)


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items} if items else {"type": "array"}


def _class_schema(cls: type, seen: frozenset[Any]) -> dict[str, Any]:
    import enum  # noqa: PLC0415
    import typing  # noqa: PLC0415
    from collections import abc  # noqa: PLC0415

    if issubclass(cls, enum.Enum):
        try:
            return _enum_like([_json_data(member.value) for member in cls])
        except (TypeError, ValueError):
            return _enum_like(list(cls.__members__))
    if cls is bool:
        return {"type": "boolean"}
    if issubclass(cls, int):
        return {"type": "integer"}
    if issubclass(cls, float):
        return {"type": "number"}
    if issubclass(cls, str):
        return {"type": "string"}
    if issubclass(cls, (bytes, bytearray)):
        return {"type": "string", "contentEncoding": "base64"}
    if hasattr(cls, "__dataclass_fields__") or typing.is_typeddict(cls):
        return _record_schema(cls, seen)
    if issubclass(cls, abc.Mapping):
        return {"type": "object"}
    if issubclass(cls, (abc.Sequence, abc.Set)):
        return {"type": "array"}
    return {}


def _record_schema(cls: type, seen: frozenset[Any]) -> dict[str, Any]:
    """A dataclass or a TypedDict as an object schema."""
    import typing  # noqa: PLC0415

    if cls in seen:
        return {"type": "object"}
    seen = seen | {cls}
    try:
        hints = typing.get_type_hints(cls)
    except Exception:
        hints = {}
    docs = _parse_docstring(cls.__doc__ or "")[1]
    properties: dict[str, Any] = {}
    required: list[str] = []
    if hasattr(cls, "__dataclass_fields__"):
        dataclasses = sys.modules["dataclasses"]
        for field in dataclasses.fields(cls):
            if not field.init:
                continue
            schema = _type_schema(hints.get(field.name, _NO_HINT), seen)
            if field.name in docs:
                schema["description"] = docs[field.name]
            if field.default is not dataclasses.MISSING:
                known, default = _try_json(field.default)
                if known:
                    schema["default"] = default
            elif field.default_factory is dataclasses.MISSING:
                required.append(field.name)
            properties[field.name] = schema
    else:
        required_keys = getattr(cls, "__required_keys__", frozenset(hints))
        for key, hint in hints.items():
            schema = _type_schema(hint, seen)
            if key in docs:
                schema["description"] = docs[key]
            properties[key] = schema
            if key in required_keys:
                required.append(key)
    return {"type": "object", "properties": properties, "required": required,
            "additionalProperties": False}


# ---- docstrings --------------------------------------------------------------------------------


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """``(summary, {parameter: description})`` of a Google, NumPy or reST docstring."""
    if not doc.strip():
        return "", {}
    import inspect  # noqa: PLC0415
    import re  # noqa: PLC0415

    lines = inspect.cleandoc(doc).splitlines()
    params: dict[str, str] = {}
    summary_end: int | None = None
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        indent = len(lines[i]) - len(lines[i].lstrip())
        head, colon, _ = stripped.partition(":")
        head = head.strip().lower()
        if _underlined(lines, i) and stripped.lower() in _PARAM_SECTIONS | _OTHER_SECTIONS:
            # NumPy style: "Parameters" over a line of dashes; entries at the header's depth.
            summary_end = i if summary_end is None else summary_end
            end = i + 2
            while end < len(lines) and not _underlined(lines, end) and not (
                    lines[end].strip() and len(lines[end]) - len(lines[end].lstrip()) < indent):
                end += 1
            if stripped.lower() in _PARAM_SECTIONS:
                _numpy_params(lines[i + 2 : end], params, re)
            i = end
        elif colon and (head in _PARAM_SECTIONS or head in _OTHER_SECTIONS):
            # Google style: "Args:" and entries indented under it.
            summary_end = i if summary_end is None else summary_end
            body, i = _section_body(lines, i + 1, indent)
            if head in _PARAM_SECTIONS:
                _google_params(body, params, re)
        elif re.match(r":[A-Za-z]+(\s[^:]*)?:", stripped):
            # reST field list: ":param name: text", continuation lines indented.
            summary_end = i if summary_end is None else summary_end
            body, i = _section_body(lines, i + 1, indent)
            _rest_param([stripped, *body], params, re)
        else:
            i += 1
    summary = "\n".join(lines[:summary_end]).strip()
    return summary, params


def _underlined(lines: list[str], i: int) -> bool:
    """Whether line *i* is a NumPy-style section header (the next line is all dashes)."""
    if i + 1 >= len(lines) or not lines[i].strip():
        return False
    under = lines[i + 1].strip()
    return len(under) >= 3 and set(under) == {"-"}


def _section_body(lines: list[str], start: int, indent: int) -> tuple[list[str], int]:
    """The lines from *start* indented deeper than *indent* (blank lines included)."""
    end = start
    while end < len(lines):
        line = lines[end]
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        end += 1
    return lines[start:end], end


def _entries(body: list[str]) -> list[tuple[str, list[str]]]:
    """Lines at the body's least indentation, each with its more indented continuation."""
    depths = [len(line) - len(line.lstrip()) for line in body if line.strip()]
    if not depths:
        return []
    base = min(depths)
    entries: list[tuple[str, list[str]]] = []
    for line in body:
        if not line.strip():
            continue
        if len(line) - len(line.lstrip()) == base:
            entries.append((line.strip(), []))
        elif entries:
            entries[-1][1].append(line.strip())
    return entries


def _google_params(body: list[str], params: dict[str, str], re: Any) -> None:
    for head, rest in _entries(body):
        match = re.match(r"^\*{0,2}(\w+)\s*(?:\(.*?\))?\s*:(.*)$", head)
        if match:
            params[match[1]] = " ".join([match[2].strip(), *rest]).strip()


def _numpy_params(body: list[str], params: dict[str, str], re: Any) -> None:
    for head, rest in _entries(body):
        match = re.match(r"^\*{0,2}(\w+)\s*(?::.*)?$", head)
        if match:
            params[match[1]] = " ".join(rest).strip()


def _rest_param(field: list[str], params: dict[str, str], re: Any) -> None:
    names = "|".join(_REST_PARAM)
    match = re.match(rf"^:(?:{names})\s+(?:[^:]*\s)?\*{{0,2}}(\w+)\s*:(.*)$", field[0])
    if match:
        params[match[1]] = " ".join([match[2].strip(), *(s.strip() for s in field[1:])]).strip()


# ---- argument conversion (JSON values to the types a function's annotations ask for) -----------


class _Conversion:
    __slots__ = ("extra", "params")

    def __init__(self, params: dict[str, Converter | None], extra: Converter | None) -> None:
        self.params = params
        self.extra = extra

    @property
    def active(self) -> bool:
        return self.extra is not None or any(c is not None for c in self.params.values())

    def apply(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for key, value in kwargs.items():
            convert = self.params.get(key, self.extra)
            out[key] = value if convert is None else convert(value, _path_join("arguments", key))
        return out


def _conversion_for(target: object) -> _Conversion:
    if _is_tool_object(target) or not callable(target):
        return _Conversion({}, None)
    try:
        import inspect  # noqa: PLC0415

        signature = inspect.signature(target)
        hints = _type_hints(target)
        params: dict[str, Converter | None] = {}
        extra = None
        for param in signature.parameters.values():
            convert = _converter(hints.get(param.name, _NO_HINT), frozenset())
            if param.kind is param.VAR_KEYWORD:
                extra = convert
            elif param.kind is not param.VAR_POSITIONAL:
                params[param.name] = convert
        return _Conversion(params, extra)
    except Exception:
        return _Conversion({}, None)


def _converter(hint: Any, seen: frozenset[Any]) -> Converter | None:
    """How to turn a valid JSON value into what *hint* asks for (None: it already is)."""
    import enum  # noqa: PLC0415
    import types  # noqa: PLC0415
    import typing  # noqa: PLC0415

    if hint is _NO_HINT or hint is None or hint is typing.Any:
        return None
    supertype = getattr(hint, "__supertype__", None)
    if supertype is not None:
        return _converter(supertype, seen)
    if isinstance(hint, type) and not _generic_alias(hint):
        if issubclass(hint, enum.Enum):
            return _enum_converter(hint)
        if issubclass(hint, (bytes, bytearray)):
            return _bytes_converter(hint)
        if hasattr(hint, "__dataclass_fields__") or typing.is_typeddict(hint):
            return _record_converter(hint, seen)
        if hint in (tuple, set, frozenset):
            return _collection_converter(hint, None)
        return None
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        return _converter(args[0], seen)
    if origin is typing.Union or origin is types.UnionType:
        return _union_converter(args, seen)
    if not isinstance(origin, type):
        return None
    from collections import abc  # noqa: PLC0415

    if issubclass(origin, abc.Mapping):
        values = _converter(args[1], seen) if len(args) == 2 else None
        return None if values is None else _mapping_converter(values)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _collection_converter(tuple, _converter(args[0], seen))
        if not args or args == ((),):
            return _collection_converter(tuple, None)
        return _tuple_converter([_converter(arg, seen) for arg in args])
    if issubclass(origin, (str, bytes, bytearray)) or not issubclass(origin, abc.Iterable):
        return None
    item = _converter(args[0], seen) if args else None
    if issubclass(origin, (set, frozenset, abc.Set)):
        kind = set if issubclass(origin, abc.MutableSet) else frozenset
        return _collection_converter(kind, item)
    return None if item is None else _collection_converter(list, item)


def _enum_converter(cls: Any) -> Converter:
    def convert(value: Any, path: str) -> Any:
        if isinstance(value, cls):
            return value
        try:
            return cls(value)
        except (ValueError, TypeError):
            if isinstance(value, str) and value in cls.__members__:
                return cls[value]
            raise ArgumentsError(f"{path}: expected one of "
                                 f"{', '.join(_literal(m.value) for m in cls)}, "
                                 f"got {_got(value)}") from None

    return convert


def _bytes_converter(cls: type) -> Converter:
    def convert(value: Any, path: str) -> Any:
        if isinstance(value, str):
            import base64  # noqa: PLC0415
            import binascii  # noqa: PLC0415

            try:
                value = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise ArgumentsError(f"{path}: expected base64 text, "
                                     f"got {_got(value)}") from None
        return value if isinstance(value, cls) else cls(value)

    return convert


def _record_converter(cls: Any, seen: frozenset[Any]) -> Converter | None:
    import typing  # noqa: PLC0415

    if cls in seen:
        return None
    seen = seen | {cls}
    try:
        hints = typing.get_type_hints(cls)
    except Exception:
        hints = {}
    fields: dict[str, Converter] = {}
    for name, hint in hints.items():
        field = _converter(hint, seen)
        if field is not None:
            fields[name] = field
    is_dataclass = hasattr(cls, "__dataclass_fields__")
    if not is_dataclass and not fields:
        return None

    def convert(value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            return value
        items = {key: fields[key](item, _path_join(path, key)) if key in fields else item
                 for key, item in value.items()}
        if not is_dataclass:
            return items
        try:
            return cls(**items)
        except (TypeError, ValueError) as exc:
            raise ArgumentsError(f"{path}: {exc}") from exc

    return convert


def _union_converter(args: tuple[Any, ...], seen: frozenset[Any]) -> Converter | None:
    members = [(arg, _converter(arg, seen)) for arg in args if arg is not type(None)]
    if all(convert is None for _, convert in members):
        return None
    if len(members) == 1:
        only = members[0][1]
        assert only is not None
        return lambda value, path: None if value is None else only(value, path)
    choices = [(_type_schema(arg, seen), convert) for arg, convert in members]

    def convert(value: Any, path: str) -> Any:
        if value is None:
            return None
        for schema, member in choices:
            try:
                validate(schema, value, path)
            except ArgumentsError:
                continue
            return value if member is None else member(value, path)
        return value

    return convert


def _mapping_converter(values: Converter) -> Converter:
    def convert(value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            return value
        return {key: values(item, _path_join(path, key)) for key, item in value.items()}

    return convert


def _collection_converter(kind: type, item: Converter | None) -> Converter:
    def convert(value: Any, path: str) -> Any:
        if not isinstance(value, (list, tuple)):
            return value
        items = value if item is None else [item(v, f"{path}[{i}]") for i, v in enumerate(value)]
        try:
            return kind(items)
        except TypeError as exc:  # unhashable items for a set
            raise ArgumentsError(f"{path}: {exc}") from exc

    return convert


def _tuple_converter(items: list[Converter | None]) -> Converter:
    def convert(value: Any, path: str) -> Any:
        if not isinstance(value, (list, tuple)):
            return value
        return tuple(v if i >= len(items) or items[i] is None
                     else items[i](v, f"{path}[{i}]")  # type: ignore[misc]
                     for i, v in enumerate(value))

    return convert


# ---- validation --------------------------------------------------------------------------------


def validate(schema: object, value: object, path: str = "arguments") -> None:
    """Check *value* against a JSON schema; raise :class:`ArgumentsError` on the first mismatch.

    Knows ``type`` (``"integer"`` takes integral floats, not bools; ``"number"`` not bools),
    ``enum``, ``const``, ``anyOf``/``oneOf`` (alike), ``allOf``, ``minimum``, ``maximum``,
    ``exclusiveMinimum``, ``exclusiveMaximum``, ``minLength``, ``maxLength``, ``pattern``,
    ``items``, ``prefixItems``, ``minItems``, ``maxItems``, ``properties``, ``required`` and
    ``additionalProperties``; other keywords (``default``, ``description``, ...) are ignored.
    """
    if schema is False:
        raise ArgumentsError(f"{path}: no value is allowed here, got {_got(value)}")
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    if kind is not None:
        kinds = [kind] if isinstance(kind, str) else list(kind) if isinstance(kind, list) else []
        if kinds and not any(_has_type(value, k, schema) for k in kinds):
            raise ArgumentsError(f"{path}: expected {_or([str(k) for k in kinds])}, "
                                 f"got {_got(value)}")
    if "const" in schema and not _json_equal(value, schema["const"]):
        raise ArgumentsError(f"{path}: expected {_literal(schema['const'])}, got {_got(value)}")
    options = schema.get("enum")
    if isinstance(options, list) and not any(_json_equal(value, o) for o in options):
        raise ArgumentsError(f"{path}: expected one of {', '.join(map(_literal, options))}, "
                             f"got {_got(value)}")
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            _validate_any(branches, value, path)
    for branch in schema.get("allOf") or ():
        validate(branch, value, path)
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        _validate_number(schema, value, path)
    elif isinstance(value, str):
        _validate_string(schema, value, path)
    elif isinstance(value, (list, tuple)):
        _validate_array(schema, value, path)
    elif isinstance(value, dict):
        _validate_object(schema, value, path)


def _has_type(value: object, kind: object, schema: dict[str, Any]) -> bool:
    if kind == "string":
        return isinstance(value, str) or (isinstance(value, (bytes, bytearray))
                                          and "contentEncoding" in schema)
    if kind == "integer":
        if isinstance(value, float):
            return value.is_integer()
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    if kind == "array":
        return isinstance(value, (list, tuple))
    if kind == "object":
        return isinstance(value, dict)
    return True  # a type this validator does not know constrains nothing


def _validate_any(branches: list[Any], value: object, path: str) -> None:
    failures: list[tuple[Any, ArgumentsError]] = []
    for branch in branches:
        try:
            validate(branch, value, path)
        except ArgumentsError as exc:
            failures.append((branch, exc))
        else:
            return
    # The one branch of the right type failed deeper down: its error says more.
    typed = [exc for branch, exc in failures if isinstance(branch, dict) and "type" in branch
             and _type_matches(branch, value)]
    if len(typed) == 1:
        raise typed[0]
    wanted: list[str] = []
    for branch in branches:
        text = _describe(branch)
        if text not in wanted:
            wanted.append(text)
    raise ArgumentsError(f"{path}: expected {_or(wanted)}, got {_got(value)}")


def _type_matches(branch: dict[str, Any], value: object) -> bool:
    kind = branch["type"]
    kinds = [kind] if isinstance(kind, str) else kind if isinstance(kind, list) else []
    return any(_has_type(value, k, branch) for k in kinds)


def _describe(schema: object) -> str:
    if not isinstance(schema, dict):
        return "any value" if schema is not False else "nothing"
    if "const" in schema:
        return _literal(schema["const"])
    if isinstance(schema.get("enum"), list):
        return "one of " + ", ".join(map(_literal, schema["enum"]))
    kind = schema.get("type")
    if isinstance(kind, str):
        return kind
    if isinstance(kind, list) and kind:
        return _or([str(k) for k in kind])
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            return _or([_describe(branch) for branch in schema[key]])
    return "a value matching the schema"


def _validate_number(schema: dict[str, Any], value: float, path: str) -> None:
    def bound(key: str) -> float | None:
        limit = schema.get(key)
        ok = isinstance(limit, (int, float)) and not isinstance(limit, bool)
        return limit if ok else None

    low, high = bound("minimum"), bound("maximum")
    low_x, high_x = bound("exclusiveMinimum"), bound("exclusiveMaximum")
    if schema.get("exclusiveMinimum") is True:  # draft 4: a flag on minimum
        low, low_x = None, low
    if schema.get("exclusiveMaximum") is True:
        high, high_x = None, high
    if low is not None and value < low:
        raise ArgumentsError(f"{path}: expected a number >= {low!r}, got {_got(value)}")
    if low_x is not None and value <= low_x:
        raise ArgumentsError(f"{path}: expected a number > {low_x!r}, got {_got(value)}")
    if high is not None and value > high:
        raise ArgumentsError(f"{path}: expected a number <= {high!r}, got {_got(value)}")
    if high_x is not None and value >= high_x:
        raise ArgumentsError(f"{path}: expected a number < {high_x!r}, got {_got(value)}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _validate_string(schema: dict[str, Any], value: str, path: str) -> None:
    low, high = schema.get("minLength"), schema.get("maxLength")
    if isinstance(low, int) and len(value) < low:
        raise ArgumentsError(f"{path}: expected at least {_count(low, 'character')}, "
                             f"got {_got(value)}")
    if isinstance(high, int) and len(value) > high:
        raise ArgumentsError(f"{path}: expected at most {_count(high, 'character')}, "
                             f"got {_count(len(value), 'character')}")
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        import re  # noqa: PLC0415

        try:
            found = re.search(pattern, value)
        except re.error:
            return  # a pattern Python cannot read constrains nothing
        if found is None:
            raise ArgumentsError(f"{path}: expected a string matching {_quote(pattern)}, "
                                 f"got {_got(value)}")


def _validate_array(schema: dict[str, Any], value: list[Any] | tuple[Any, ...],
                    path: str) -> None:
    low, high = schema.get("minItems"), schema.get("maxItems")
    if isinstance(low, int) and len(value) < low:
        raise ArgumentsError(f"{path}: expected at least {_count(low, 'item')}, "
                             f"got {_count(len(value), 'item')}")
    if isinstance(high, int) and len(value) > high:
        raise ArgumentsError(f"{path}: expected at most {_count(high, 'item')}, "
                             f"got {_count(len(value), 'item')}")
    prefix, items = schema.get("prefixItems"), schema.get("items")
    if isinstance(items, list):  # before draft 2020-12: items as a list, then additionalItems
        prefix, items = items, schema.get("additionalItems")
    start = 0
    if isinstance(prefix, list):
        for index, (item_schema, item) in enumerate(zip(prefix, value, strict=False)):
            validate(item_schema, item, f"{path}[{index}]")
        start = len(prefix)
    if items is False and len(value) > start:
        raise ArgumentsError(f"{path}: expected at most {_count(start, 'item')}, "
                             f"got {_count(len(value), 'item')}")
    if isinstance(items, dict):
        for index in range(start, len(value)):
            validate(items, value[index], f"{path}[{index}]")


def _validate_object(schema: dict[str, Any], value: dict[Any, Any], path: str) -> None:
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        properties = {}
    additional = schema.get("additionalProperties", True)
    if additional is False:
        unexpected = [key for key in value if key not in properties]
        if unexpected:
            noun = "property" if len(unexpected) == 1 else "properties"
            raise ArgumentsError(f"{path}: unexpected {noun} "
                                 f"{', '.join(_name(k) for k in unexpected)}")
    required = schema.get("required")
    if isinstance(required, list):
        missing = [key for key in required if isinstance(key, str) and key not in value]
        if missing:
            noun = "property" if len(missing) == 1 else "properties"
            raise ArgumentsError(f"{path}: missing required {noun} "
                                 f"{', '.join(_name(k) for k in missing)}")
    for key, item in value.items():
        if key in properties:
            validate(properties[key], item, _path_join(path, key))
        elif isinstance(additional, dict):
            validate(additional, item, _path_join(path, key))


def _json_equal(a: object, b: object) -> bool:
    """Equality as JSON sees it: ``true`` is not ``1``, ``1`` is ``1.0``, tuples are arrays."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=False))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple, dict)) or isinstance(b, (list, tuple, dict)):
        return False
    try:
        return bool(a == b) and (isinstance(a, str) == isinstance(b, str))
    except Exception:
        return False


# ---- messages ----------------------------------------------------------------------------------


def _quote(text: str, limit: int = 60) -> str:
    """*text* in double quotes on one line, shortened past *limit* characters."""
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char < " " or char == "\x7f" or char in "\u2028\u2029":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _literal(value: object) -> str:
    """*value* as JSON would write it (briefly)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, int) and value.bit_length() > 128:
        return "a very large integer"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _got(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {_literal(value)}"
    if isinstance(value, int):
        return f"integer {_literal(value)}"
    if isinstance(value, float):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {_quote(value)}"
    if isinstance(value, (bytes, bytearray)):
        return "bytes"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _or(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} or {words[-1]}"


def _name(key: object) -> str:
    return repr(key) if not isinstance(key, str) or len(key) <= 60 else repr(key[:57] + "...")


def _path_join(path: str, key: str) -> str:
    return f"{path}.{key}" if key.isidentifier() else f"{path}[{_quote(key)}]"


# ---- results -----------------------------------------------------------------------------------


def to_content(value: object) -> object:
    """A tool's return value as data msgpack and JSON can carry.

    ``str``, ``int``, ``float``, ``bool``, ``None`` and ``bytes`` stay as they are (subclasses
    become the base type; an integer outside msgpack's 64-bit range becomes its decimal text;
    ``bytearray`` and ``memoryview`` become ``bytes``); lists, tuples and sets become lists, and
    dicts dicts (keys that are not strings become ``str(key)``), recursively. An Enum member
    becomes its value, an object with ``to_dict()`` (or pydantic's ``model_dump()``) what that
    returns, a dataclass instance a dict of its fields. Anything else, a reference cycle, or
    nesting deeper than 100 levels becomes its ``repr``. Never raises (except for a
    ``BaseException`` such as KeyboardInterrupt).
    """
    return _content(value, 0, set())


def _content(value: object, depth: int, active: set[int]) -> object:
    kind = type(value)
    if value is None or kind is str or kind is bool or kind is float or kind is bytes:
        return value
    if kind is int:
        assert isinstance(value, int)
        return value if _INT_MIN <= value <= _INT_MAX else str(value)
    if depth >= _MAX_DEPTH:
        return _repr(value)
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        if id(value) in active:
            return _repr(value)
        active.add(id(value))
        try:
            if isinstance(value, dict):
                return {_key(k): _content(v, depth + 1, active) for k, v in value.items()}
            import contextlib  # noqa: PLC0415

            items = list(value)
            if isinstance(value, (set, frozenset)):
                with contextlib.suppress(Exception):  # unorderable: iteration order
                    items.sort()
            return [_content(item, depth + 1, active) for item in items]
        finally:
            active.discard(id(value))
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    enum = sys.modules.get("enum")
    if enum is not None and isinstance(value, enum.Enum):
        return _content(value.value, depth + 1, active)
    if isinstance(value, int):
        return _content(int.__int__(value), depth, active)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, type):
        return _repr(value)
    return _content_of_object(value, depth, active)


def _content_of_object(value: object, depth: int, active: set[int]) -> object:
    if id(value) in active:
        return _repr(value)
    active.add(id(value))
    try:
        for method in ("to_dict", "model_dump"):
            try:
                convert = getattr(value, method, None)
                if callable(convert):
                    return _content(convert(), depth + 1, active)
            except Exception:
                continue
        if hasattr(type(value), "__dataclass_fields__"):
            dataclasses = sys.modules.get("dataclasses")
            if dataclasses is not None:
                try:
                    return {field.name: _content(getattr(value, field.name), depth + 1, active)
                            for field in dataclasses.fields(value)}
                except Exception:
                    pass
        return _repr(value)
    finally:
        active.discard(id(value))


def _key(key: object) -> str:
    if isinstance(key, str):
        return str.__str__(key)
    content = to_content(key)
    return content if isinstance(content, str) else str(content)


def _repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__qualname__} object>"
