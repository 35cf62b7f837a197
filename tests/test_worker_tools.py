"""hostbridge/worker/tools.py: loading plugin tools, their schemas, validation, calls, results.

The module runs inside plugin workers (stdlib only, any Python from 3.10), so it is loaded here
by path, as the worker does, not through the host's ``hostbridge`` package.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools
import importlib.util
import json
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Mapping, Sequence  # noqa: TC003 - get_type_hints() needs them
from pathlib import Path
from typing import (  # noqa: UP035 - the old spellings are under test too
    TYPE_CHECKING,
    Any,
    ClassVar,
    List,
    Literal,
    Optional,
    TypedDict,
    Union,
)

import pytest

from isolator._errors import InterpreterNotFoundError
from isolator.store._interpreters import find_python

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from fractions import Fraction  # only while type checking: get_type_hints() cannot see it
    from types import ModuleType

TOOLS_PATH = Path(__file__).resolve().parent.parent / "hostbridge" / "worker" / "tools.py"


def _load_tools() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_ohp_worker_tools_under_test", TOOLS_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


tools = _load_tools()


def schema_of(func: Callable[..., Any]) -> dict[str, Any]:
    return tools.schema_from_function(func)[1]


def props(func: Callable[..., Any]) -> dict[str, Any]:
    return schema_of(func)["properties"]


# -- types the functions below use (module level: string annotations resolve here) ---------------


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass
class Point:
    """A point on the screen.

    Attributes:
        x: pixels from the left
        y: pixels from the top
    """

    x: int
    y: int = 0


class Options(TypedDict, total=False):
    verbose: bool
    depth: int


# -- schemas -------------------------------------------------------------------------------------


def test_scalars_defaults_required_and_the_object_shape() -> None:
    def f(text: str, *, count: int, ratio: float, flag: bool, blob: bytes, nothing: None,
          limit: int = 10, name: str = "x") -> str:
        """Echo."""
        return text

    description, schema = tools.schema_from_function(f)
    assert description == "Echo."
    assert schema == {
        "type": "object",
        "properties": {
            "text": {"type": "string"},
            "count": {"type": "integer"},
            "ratio": {"type": "number"},
            "flag": {"type": "boolean"},
            "blob": {"type": "string", "contentEncoding": "base64"},
            "nothing": {"type": "null"},
            "limit": {"type": "integer", "default": 10},
            "name": {"type": "string", "default": "x"},
        },
        "required": ["text", "count", "ratio", "flag", "blob", "nothing"],
        "additionalProperties": False,
    }
    json.dumps(schema)  # JSON data all through


def test_string_annotations_resolve_in_the_functions_module() -> None:
    # This file has `from __future__ import annotations`: every annotation here is a string.
    def f(color: Color, point: Point, level: Level = Level.LOW) -> None:
        pass

    assert f.__annotations__["color"] == "Color"
    p = props(f)
    assert p["color"] == {"type": "string", "enum": ["red", "green"]}
    assert p["level"] == {"type": "integer", "enum": [1, 2], "default": 1}
    assert p["point"]["properties"]["x"] == {"type": "integer",
                                             "description": "pixels from the left"}


def test_optional_union_and_none_defaults() -> None:
    def f(a: Optional[int], b: int | None,  # noqa: UP045 - both spellings
          c: str | None = None, d: Union[int, str] = 1,  # noqa: UP007
          e: int = None,  # type: ignore[assignment]  # noqa: RUF013 - on purpose
          ) -> None:
        pass

    description, schema = tools.schema_from_function(f)
    nullable_int = {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert schema["properties"] == {
        "a": nullable_int,
        "b": nullable_int,
        "c": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        "d": {"anyOf": [{"type": "integer"}, {"type": "string"}], "default": 1},
        # A None default admits null on every Python (3.10's get_type_hints adds Optional).
        "e": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None},
    }
    assert schema["required"] == ["a", "b"]  # Optional without a default is still required
    assert description == ""


def test_containers() -> None:
    def f(a: list[int], *, b: List[str], c: Sequence[float],  # noqa: UP006
          d: tuple[int, ...], e: tuple[int, str], f: dict[str, int], g: Mapping[str, Any],
          h: list, i: dict, j: set[str], k: list[list[bool]]) -> None:
        pass

    assert props(f) == {
        "a": {"type": "array", "items": {"type": "integer"}},
        "b": {"type": "array", "items": {"type": "string"}},
        "c": {"type": "array", "items": {"type": "number"}},
        "d": {"type": "array", "items": {"type": "integer"}},
        "e": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}],
              "minItems": 2, "maxItems": 2},
        "f": {"type": "object", "additionalProperties": {"type": "integer"}},
        "g": {"type": "object"},
        "h": {"type": "array"},
        "i": {"type": "object"},
        "j": {"type": "array", "items": {"type": "string"}},
        "k": {"type": "array", "items": {"type": "array", "items": {"type": "boolean"}}},
    }


def test_literal_enum_any_and_missing_hints() -> None:
    def f(mode: Literal["fast", "slow"], *, n: Literal[1, 2, 3], mixed: Literal["a", 1, None],
          color: Color, anything: Any, untyped, obj: object,
          when: Literal["now"] = "now", tint: Color = Color.GREEN) -> None:
        pass

    assert props(f) == {
        "mode": {"type": "string", "enum": ["fast", "slow"]},
        "n": {"type": "integer", "enum": [1, 2, 3]},
        "mixed": {"enum": ["a", 1, None]},
        "color": {"type": "string", "enum": ["red", "green"]},
        "anything": {},
        "untyped": {},
        "obj": {},
        "when": {"type": "string", "enum": ["now"], "default": "now"},
        "tint": {"type": "string", "enum": ["red", "green"], "default": "green"},
    }


def test_dataclass_and_typeddict_parameters() -> None:
    def f(point: Point, options: Options) -> None:
        pass

    p = props(f)
    assert p["point"] == {
        "type": "object",
        "properties": {"x": {"type": "integer", "description": "pixels from the left"},
                       "y": {"type": "integer", "description": "pixels from the top",
                             "default": 0}},
        "required": ["x"],
        "additionalProperties": False,
    }
    assert p["options"] == {
        "type": "object",
        "properties": {"verbose": {"type": "boolean"}, "depth": {"type": "integer"}},
        "required": [],
        "additionalProperties": False,
    }


def test_defaults_that_are_not_json_are_left_out() -> None:
    marker = object()

    def f(a: Any = marker, b: tuple[int, int] = (1, 2), c: bytes = b"x") -> None:
        pass

    assert props(f) == {
        "a": {},
        "b": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "integer"}],
              "minItems": 2, "maxItems": 2, "default": [1, 2]},
        "c": {"type": "string", "contentEncoding": "base64"},
    }


def test_an_unresolvable_annotation_accepts_anything() -> None:
    # Fraction is imported only under TYPE_CHECKING above, so get_type_hints() fails on it.
    def f(a: Fraction, b: int) -> None:
        pass

    assert props(f) == {"a": {}, "b": {"type": "integer"}}


def test_kwargs_become_additional_properties_and_args_are_refused() -> None:
    def typed(a: int, **extra: str) -> None:
        pass

    def untyped(**extra) -> None:
        pass

    def star(*args: int) -> None:
        pass

    def positional(a: int, /) -> None:
        pass

    assert schema_of(typed)["additionalProperties"] == {"type": "string"}
    assert schema_of(untyped)["additionalProperties"] is True
    with pytest.raises(tools.ToolLoadError, match=r"parameter \*args of .*star\(\) cannot be"):
        tools.schema_from_function(star)
    with pytest.raises(tools.ToolLoadError, match="positional-only parameter 'a'"):
        tools.schema_from_function(positional)


def test_google_docstring() -> None:
    def f(path: str, count: int = 1, *, deep: bool = False) -> str:
        """Read a file.

        Reads it all, in
        one go.

        Args:
            path: Where the file is,
                relative to the workspace.
            count (int): How many times.
            deep (bool, optional): Follow links (see: docs).

        Returns:
            The text.

        Raises:
            OSError: when it cannot.
        """
        return path

    description, schema = tools.schema_from_function(f)
    assert description == "Read a file.\n\nReads it all, in\none go."
    p = schema["properties"]
    assert p["path"] == {"type": "string",
                         "description": "Where the file is, relative to the workspace."}
    assert p["count"] == {"type": "integer", "description": "How many times.", "default": 1}
    assert p["deep"]["description"] == "Follow links (see: docs)."


def test_rest_and_numpy_docstrings() -> None:
    def rest(a: int, b: str) -> None:
        """Do it.

        :param a: the first,
            long one
        :param str b: the second
        :returns: nothing
        """

    def numpy(a: int, b: str) -> None:
        """Do it too.

        Parameters
        ----------
        a : int
            The first.
        b : str
            The second,
            in two lines.

        Returns
        -------
        None
        """

    description, schema = tools.schema_from_function(rest)
    assert description == "Do it."
    assert schema["properties"]["a"]["description"] == "the first, long one"
    assert schema["properties"]["b"]["description"] == "the second"
    description, schema = tools.schema_from_function(numpy)
    assert description == "Do it too."
    assert schema["properties"]["a"]["description"] == "The first."
    assert schema["properties"]["b"]["description"] == "The second, in two lines."


def test_single_line_returns_section_ends_the_summary() -> None:
    def f() -> int:
        """Count things.

        Returns: the count.
        """
        return 0

    assert tools.schema_from_function(f)[0] == "Count things."


def test_callables_other_than_plain_functions() -> None:
    def base(a: int, b: str = "x", *, c: bool = False) -> str:
        """Join."""
        return f"{a}{b}{c}"

    class Doubler:
        """Double a number."""

        def __call__(self, n: int) -> int:
            return 2 * n

    class Holder:
        def method(self, n: int) -> int:
            """Method."""
            return n

    partial = functools.partial(base, 1)
    assert tools.schema_from_function(partial) == ("Join.", {
        "type": "object",
        "properties": {"b": {"type": "string", "default": "x"},
                       "c": {"type": "boolean", "default": False}},
        "required": [], "additionalProperties": False})
    assert _tool(partial).call({"b": "y"}) == "1yFalse"
    assert tools.schema_from_function(Doubler())[0] == "Double a number."
    assert _tool(Doubler()).call({"n": 4}) == 8
    assert props(Holder().method) == {"n": {"type": "integer"}}


# -- validation ----------------------------------------------------------------------------------

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "text": {"type": "string", "minLength": 1, "maxLength": 5},
        "count": {"type": "integer", "minimum": 1, "maximum": 10},
        "ratio": {"type": "number", "exclusiveMinimum": 0},
        "flag": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
        "mode": {"enum": ["fast", "slow"]},
        "one": {"const": 1},
        "maybe": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        "deep": {"anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "null"}]},
        "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        "kinds": {"type": ["string", "null"]},
        "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "nested": {"type": "object", "properties": {"n": {"type": "integer"}},
                   "required": ["n"], "additionalProperties": {"type": "string"}},
        "my key": {"type": "integer"},
    },
    "required": ["text"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("arguments", [
    {"text": "a"},
    {"text": "abcde", "count": 1, "ratio": 0.5, "flag": False},
    {"text": "a", "count": 10.0},  # an integral float is an integer
    {"text": "a", "ratio": 3},  # an integer is a number
    {"text": "a", "tags": ["x", "y"], "mode": "slow", "one": 1.0},
    {"text": "a", "maybe": None, "deep": [1, 2], "either": 3, "kinds": None},
    {"text": "a", "code": "ABC", "nested": {"n": 1, "extra": "s"}, "my key": 2},
    {"text": "a", "tags": ("x",)},  # tuples are arrays
])
def test_valid_arguments(arguments: dict[str, Any]) -> None:
    tools.validate(SCHEMA, arguments)


@pytest.mark.parametrize(("arguments", "message"), [
    ({}, "arguments: missing required property 'text'"),
    ({"text": "a", "colour": "red"}, "arguments: unexpected property 'colour'"),
    ({"text": "a", "b": 1, "c": 2}, "arguments: unexpected properties 'b', 'c'"),
    ({"text": "a", "count": "x"}, 'arguments.count: expected integer, got string "x"'),
    ({"text": "a", "count": True}, "arguments.count: expected integer, got boolean true"),
    ({"text": "a", "count": 1.5}, "arguments.count: expected integer, got number 1.5"),
    ({"text": "a", "count": 0}, "arguments.count: expected a number >= 1, got integer 0"),
    ({"text": "a", "count": 11}, "arguments.count: expected a number <= 10, got integer 11"),
    ({"text": "a", "ratio": 0}, "arguments.ratio: expected a number > 0, got integer 0"),
    ({"text": "a", "ratio": False}, "arguments.ratio: expected number, got boolean false"),
    ({"text": "a", "flag": 1}, "arguments.flag: expected boolean, got integer 1"),
    ({"text": ""}, 'arguments.text: expected at least 1 character, got string ""'),
    ({"text": "abcdef"}, "arguments.text: expected at most 5 characters, got 6 characters"),
    ({"text": None}, "arguments.text: expected string, got null"),
    ({"text": "a", "tags": "x"}, 'arguments.tags: expected array, got string "x"'),
    ({"text": "a", "tags": []}, "arguments.tags: expected at least 1 item, got 0 items"),
    ({"text": "a", "tags": ["a", "b", "c"]},
     "arguments.tags: expected at most 2 items, got 3 items"),
    ({"text": "a", "tags": ["a", 2]}, "arguments.tags[1]: expected string, got integer 2"),
    ({"text": "a", "mode": "medium"},
     'arguments.mode: expected one of "fast", "slow", got string "medium"'),
    ({"text": "a", "one": True}, "arguments.one: expected 1, got boolean true"),
    ({"text": "a", "maybe": "x"}, 'arguments.maybe: expected integer or null, got string "x"'),
    ({"text": "a", "deep": [1, "x"]}, 'arguments.deep[1]: expected integer, got string "x"'),
    ({"text": "a", "either": 1.5}, "arguments.either: expected string or integer, got number 1.5"),
    ({"text": "a", "kinds": 3}, "arguments.kinds: expected string or null, got integer 3"),
    ({"text": "a", "code": "abc"},
     'arguments.code: expected a string matching "^[A-Z]{3}$", got string "abc"'),
    ({"text": "a", "nested": {}}, "arguments.nested: missing required property 'n'"),
    ({"text": "a", "nested": {"n": 1, "x": 2}},
     "arguments.nested.x: expected string, got integer 2"),
    ({"text": "a", "my key": "1"}, 'arguments["my key"]: expected integer, got string "1"'),
    ({"text": "line\nbreak" + "x" * 80},
     'arguments.text: expected at most 5 characters, got 90 characters'),
    ({"text": 7 * "\n"}, "arguments.text: expected at most 5 characters, got 7 characters"),
    ({"text": ["a"]}, "arguments.text: expected string, got array"),
    ({"text": {"a": 1}}, "arguments.text: expected string, got object"),
])
def test_invalid_arguments(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(tools.ArgumentsError) as info:
        tools.validate(SCHEMA, arguments)
    assert str(info.value) == message
    assert "\n" not in str(info.value)


def test_long_and_odd_strings_are_quoted_on_one_line() -> None:
    with pytest.raises(tools.ArgumentsError) as info:
        tools.validate({"type": "integer"}, 'say "hi"\n\t' + "x" * 100, "arguments.n")
    assert str(info.value) == ('arguments.n: expected integer, got string '
                               '"say \\"hi\\"\\n\\t' + "x" * 47 + '..."')


def test_validator_odds_and_ends() -> None:
    tools.validate({}, object())  # an empty schema takes anything
    tools.validate(True, 1)
    tools.validate({"type": "frobnicate", "x-vendor": 1, "default": "ignored"}, 1)
    tools.validate({"allOf": [{"type": "integer"}, {"minimum": 1}]}, 2)
    tools.validate({"items": [{"type": "integer"}], "additionalItems": {"type": "string"}},
                   [1, "a"])
    tools.validate({"type": "string", "pattern": "(unclosed"}, "x")  # unreadable: ignored
    tools.validate({"type": "string", "contentEncoding": "base64"}, b"raw bytes")
    with pytest.raises(tools.ArgumentsError, match=r"^arguments: no value is allowed here"):
        tools.validate(False, 1)
    with pytest.raises(tools.ArgumentsError, match=r"^x: expected at most 1 item, got 2 items$"):
        tools.validate({"prefixItems": [{}], "items": False}, [1, 2], "x")
    with pytest.raises(tools.ArgumentsError, match=r"^x: expected a number >= 1, got integer 0"):
        tools.validate({"allOf": [{"type": "integer"}, {"minimum": 1}]}, 0, "x")
    with pytest.raises(tools.ArgumentsError, match="expected string, got bytes"):
        tools.validate({"type": "string"}, b"raw")
    with pytest.raises(tools.ArgumentsError, match=r"expected a number < 5, got number 5.0"):
        tools.validate({"exclusiveMaximum": 5}, 5.0)
    # enum and const compare as JSON does: true is not 1, 1 is 1.0, [1] is (1,)
    tools.validate({"enum": [1, [1, 2]]}, 1.0)
    tools.validate({"const": [1, 2]}, (1, 2))
    with pytest.raises(tools.ArgumentsError, match="expected one of 1, 2, got boolean true"):
        tools.validate({"enum": [1, 2]}, True)
    with pytest.raises(tools.ArgumentsError, match='expected one of "1", got integer 1'):
        tools.validate({"enum": ["1"]}, 1)


def test_tool_validate_checks_the_container_and_copies() -> None:
    tool = tools.Tool("t", "", {"type": "object", "properties": {}}, lambda: None)
    with pytest.raises(tools.ArgumentsError, match=r"^arguments: expected object, got array$"):
        tool.validate([1])
    with pytest.raises(tools.ArgumentsError,
                       match=r"^arguments: property names must be strings, got integer 1$"):
        tool.validate({1: "a"})
    arguments = {"a": 1}
    validated = tool.validate(arguments)
    assert validated == arguments
    assert validated is not arguments


def test_defaults_are_not_filled_in() -> None:
    def f(a: int, b: int = 2) -> int:
        return a + b

    tool = tools.Tool("f", *tools.schema_from_function(f), f)
    assert tool.validate({"a": 1}) == {"a": 1}
    assert tool.call({"a": 1}) == 3


# -- calling -------------------------------------------------------------------------------------


def _tool(func: Callable[..., Any], name: str = "t") -> Any:
    return tools.Tool(name, *tools.schema_from_function(func), func)


def test_call_validates_then_calls() -> None:
    calls = []

    def add(a: int, b: int = 0) -> int:
        calls.append((a, b))
        return a + b

    tool = _tool(add, "add")
    assert tool.call({"a": 2, "b": 3}) == 5
    with pytest.raises(tools.ArgumentsError, match=r"^arguments\.b: expected integer"):
        tool.call({"a": 2, "b": "3"})
    assert calls == [(2, 3)]
    assert tool.spec() == {"name": "add", "description": "", "input_schema": schema_of(add)}


def test_arguments_are_converted_to_what_the_annotations_ask_for() -> None:
    def f(color: Color, *, level: Level, point: Point, pair: tuple[int, Color], data: bytes,
          names: set[str], colors: list[Color], maybe: Optional[Color] = None,  # noqa: UP045
          by_name: dict[str, Point] | None = None, **extra: Color) -> tuple[Any, ...]:
        return color, level, point, pair, data, names, colors, maybe, by_name, extra

    result = _tool(f).call({
        "color": "red", "level": 2, "point": {"x": 1}, "pair": [1, "green"], "data": "aGk=",
        "names": ["a", "b", "a"], "colors": ["green"], "maybe": "green",
        "by_name": {"p": {"x": 3, "y": 4}}, "more": "red",
    })
    assert result == (Color.RED, Level.HIGH, Point(1, 0), (1, Color.GREEN), b"hi", {"a", "b"},
                      [Color.GREEN], Color.GREEN, {"p": Point(3, 4)}, {"more": Color.RED})
    assert _tool(f).call({"color": "red", "level": 1, "point": {"x": 1}, "pair": [1, "red"],
                          "data": b"raw", "names": [], "colors": []})[4] == b"raw"
    with pytest.raises(tools.ArgumentsError,
                       match=r'^arguments\.data: expected base64 text, got string "%%%"$'):
        _tool(f).call({"color": "red", "level": 1, "point": {"x": 1}, "pair": [1, "red"],
                       "data": "%%%", "names": [], "colors": []})


def test_async_function_tool() -> None:
    async def slow_add(a: int, b: int) -> int:
        """Add, eventually."""
        await asyncio.sleep(0)
        return a + b

    tool = _tool(slow_add)
    assert tool.description == "Add, eventually."
    assert tool.call({"a": 1, "b": 2}) == 3


def test_an_exception_in_a_tool_propagates_unchanged() -> None:
    error = KeyError("boom")

    def broken(a: int) -> None:
        raise error

    async def broken_async() -> None:
        raise error

    for func, arguments in ((broken, {"a": 1}), (broken_async, {})):
        with pytest.raises(KeyError) as info:
            _tool(func).call(arguments)
        assert info.value is error


class Counter:
    name = "counter"
    description = "Counts."
    input_schema: ClassVar[dict[str, Any]] = {
        "type": "object", "properties": {"by": {"type": "integer"}}, "required": ["by"]}

    def __init__(self) -> None:
        self.total = 0

    def call(self, by: int) -> int:
        self.total += by
        return self.total

    def __call__(self, **arguments: Any) -> str:
        raise AssertionError("call() wins over __call__()")


class CallableTool:
    name = "callable"
    description = "Called."
    input_schema: ClassVar[dict[str, Any]] = {
        "type": "object", "properties": {"x": {"type": "string"}}}

    def __call__(self, x: str = "") -> str:
        return x.upper()


class AsyncTool:
    name = "async"
    description = "Awaited."
    input_schema: ClassVar[dict[str, Any]] = {"type": "object"}

    async def call(self, **arguments: Any) -> dict[str, Any]:
        await asyncio.sleep(0)
        return arguments


# -- load_tool -----------------------------------------------------------------------------------


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Write a module into a directory on sys.path; returns its (unique) name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    names: list[str] = []

    def write(source: str) -> str:
        name = f"plugin_{uuid.uuid4().hex}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        names.append(name)
        return name

    yield write
    for name in names:
        sys.modules.pop(name, None)


PLUGIN_SOURCE = '''
import asyncio
from enum import Enum
from typing import Literal


class Tone(Enum):
    PLAIN = "plain"
    LOUD = "loud"


def shout(text: str, times: int = 1, tone: Tone = Tone.LOUD) -> str:
    """Shout the text.

    Args:
        text: what to shout
        times: how often
    """
    out = " ".join([text] * times)
    return out.upper() if tone is Tone.LOUD else out


async def later(delay: float = 0.0) -> Literal["done"]:
    await asyncio.sleep(delay)
    return "done"


class Outer:
    @staticmethod
    def inner(n: int) -> int:
        """Double."""
        return n * 2


class Counter:
    name = "counter"
    description = "Counts."
    input_schema = {"type": "object", "properties": {"by": {"type": "integer"}},
                    "required": ["by"], "additionalProperties": False}

    def __init__(self):
        self.total = 0

    def call(self, by):
        self.total += by
        return self.total


counter = Counter()
NOT_A_TOOL = 42


def star(*names: str) -> None:
    pass


class Broken:
    input_schema = ["not", "a", "dict"]

    def call(self):
        pass


class NotAnObject:
    input_schema = {"type": "array"}

    def call(self):
        pass


class NoCall:
    name = "x"
    description = "x"
    input_schema = {"type": "object"}


class BadDescription:
    description = 3
    input_schema = {"type": "object"}

    def call(self):
        pass


broken, not_an_object, no_call, bad_description = (
    Broken(), NotAnObject(), NoCall(), BadDescription())
'''


def test_load_a_function_tool(plugin: Callable[[str], str]) -> None:
    module = plugin(PLUGIN_SOURCE)
    tool = tools.load_tool("shout-it", f"{module}:shout")
    assert tool.name == "shout-it"
    assert tool.description == "Shout the text."
    assert tool.input_schema == {
        "type": "object",
        "properties": {
            "text": {"type": "string", "description": "what to shout"},
            "times": {"type": "integer", "description": "how often", "default": 1},
            "tone": {"type": "string", "enum": ["plain", "loud"], "default": "loud"},
        },
        "required": ["text"],
        "additionalProperties": False,
    }
    assert tool.call({"text": "hi", "times": 2}) == "HI HI"
    assert tool.call({"text": "hi", "tone": "plain"}) == "hi"
    assert tool.target is sys.modules[module].shout
    assert tool == tools.load_tool("shout-it", f"{module}:shout")
    assert repr(tool).startswith("Tool(name='shout-it', description='Shout the text.', ")


def test_load_nested_async_and_object_tools(plugin: Callable[[str], str]) -> None:
    module = plugin(PLUGIN_SOURCE)
    inner = tools.load_tool("double", f"{module}:Outer.inner")
    assert inner.spec()["description"] == "Double."
    assert inner.call({"n": 21}) == 42
    later = tools.load_tool("later", f" {module} : later ")  # spaces around the parts are fine
    assert later.input_schema["properties"] == {"delay": {"type": "number", "default": 0.0}}
    assert later.call({}) == "done"
    counter = tools.load_tool("count-up", f"{module}:counter")
    assert counter.name == "count-up"  # the entry point's name, not the object's
    assert counter.description == "Counts."
    assert counter.input_schema == sys.modules[module].Counter.input_schema
    assert counter.call({"by": 2}) == 2
    assert counter.call({"by": 3}) == 5
    with pytest.raises(tools.ArgumentsError, match=r"^arguments: unexpected property 'step'$"):
        counter.call({"step": 1})


def test_object_tools_call_and_dunder_call_and_async() -> None:
    counter = Counter()
    tool = tools.Tool("c", counter.description, counter.input_schema, counter)
    assert tool.call({"by": 4}) == 4
    callable_tool = CallableTool()
    assert tools.Tool("c", "", callable_tool.input_schema, callable_tool).call({"x": "a"}) == "A"
    async_tool = AsyncTool()
    assert tools.Tool("a", "", async_tool.input_schema, async_tool).call({"k": 1}) == {"k": 1}


@pytest.mark.parametrize(("ref", "message"), [
    ("plugin_that_does_not_exist_x:f",
     "cannot import module 'plugin_that_does_not_exist_x': ModuleNotFoundError: No module named "
     "'plugin_that_does_not_exist_x'"),
    ("{module}:missing", "module '{module}' has no attribute 'missing'"),
    ("{module}:Outer.missing", "module '{module}' has no attribute 'Outer.missing'"),
    ("{module}:NOT_A_TOOL", "int object is not a tool (expected a function, or an object with "
     "name, description, input_schema and a call method)"),
    ("{module}:star", r"parameter *names of star() cannot be described by a JSON schema"),
    ("{module}:Counter", "Counter is a class, not a tool (export an instance of it, or a "
     "function)"),
    ("{module}:broken", "input_schema must be a dict (a JSON schema), got list"),
    ("{module}:not_an_object", "input_schema must describe an object (arguments are passed by "
     "name), not type 'array'"),
    ("{module}:no_call", "NoCall object has no call method"),
    ("{module}:bad_description", "description must be a string, got int"),
    ("{module}", "expected 'module:object'"),
    ("{module}:", "expected 'module:object'"),
])
def test_load_tool_errors_name_the_entry_point(plugin: Callable[[str], str], ref: str,
                                               message: str) -> None:
    module = plugin(PLUGIN_SOURCE)
    ref = ref.replace("{module}", module)
    with pytest.raises(tools.ToolLoadError) as info:
        tools.load_tool("my-tool", ref)
    text = str(info.value)
    assert text.startswith(f"entry point 'my-tool = {ref}': ")
    assert message.replace("{module}", module) in text


def test_load_tool_reports_a_module_that_fails_on_import(plugin: Callable[[str], str]) -> None:
    module = plugin("raise RuntimeError('no config')\n")
    with pytest.raises(tools.ToolLoadError) as info:
        tools.load_tool("t", f"{module}:f")
    assert str(info.value) == (f"entry point 't = {module}:f': cannot import module "
                               f"{module!r}: RuntimeError: no config")
    assert isinstance(info.value.__cause__, RuntimeError)
    module = plugin("import sys\nsys.exit(3)\n")
    with pytest.raises(tools.ToolLoadError, match="SystemExit: 3"):
        tools.load_tool("t", f"{module}:f")
    module = plugin("def f(:\n")
    with pytest.raises(tools.ToolLoadError, match="SyntaxError"):
        tools.load_tool("t", f"{module}:f")


def test_annotations_without_future_import(plugin: Callable[[str], str]) -> None:
    module = plugin('''
        from typing import Optional

        def f(a: Optional[int], b: list[str], c: "int | None" = None) -> None:
            pass
    ''')
    assert tools.load_tool("f", f"{module}:f").input_schema["properties"] == {
        "a": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        "b": {"type": "array", "items": {"type": "string"}},
        "c": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None},
    }


# -- to_content ----------------------------------------------------------------------------------


class WithToDict:
    def to_dict(self) -> dict[str, Any]:
        return {"kind": "custom", "values": (1, 2)}


class Opaque:
    def __repr__(self) -> str:
        return "<Opaque>"


class BadRepr:
    def __repr__(self) -> str:
        raise ValueError("no")


class MyStr(str):
    pass


@pytest.mark.parametrize(("value", "content"), [
    ("text", "text"), (3, 3), (2.5, 2.5), (True, True), (None, None), (b"\x00", b"\x00"),
    ([1, (2, 3)], [1, [2, 3]]),
    ({"a": {"b": (1,)}}, {"a": {"b": [1]}}),
    ({1: "one", None: 0}, {"1": "one", "None": 0}),
    (Point(1, 2), {"x": 1, "y": 2}),
    ([Point(1, 2)], [{"x": 1, "y": 2}]),
    (WithToDict(), {"kind": "custom", "values": [1, 2]}),
    (Color.RED, "red"),
    (Level.HIGH, 2),
    ({3, 1, 2}, [1, 2, 3]),
    (bytearray(b"ab"), b"ab"),
    (MyStr("s"), "s"),
    (2**64, "18446744073709551616"),
    (-(2**63), -(2**63)),
    (Opaque(), "<Opaque>"),
    (BadRepr(), "<BadRepr object>"),
    (Point, repr(Point)),
])
def test_to_content(value: object, content: object) -> None:
    result = tools.to_content(value)
    assert result == content
    assert type(result) is type(content)


def test_to_content_cycles_and_depth() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    assert tools.to_content(loop) == [1, "[1, [...]]"]
    deep: list[Any] = []
    for _ in range(500):
        deep = [deep]
    content = tools.to_content(deep)
    depth = 0
    while isinstance(content, list):
        content, depth = content[0], depth + 1
    assert depth == 56  # within the protocol's depth limit of 64, with the response around it
    assert isinstance(content, str)
    json.dumps(tools.to_content({"p": Point(1, 2), "s": {1}, "o": Opaque()}))


# -- the worker's constraints --------------------------------------------------------------------


IMPORT_CHECK = f"""
import importlib.util, sys
before = set(sys.modules)
spec = importlib.util.spec_from_file_location("tools", {str(TOOLS_PATH)!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(sorted(set(sys.modules) - before))
def f(a: int) -> int:
    return a
assert module.Tool("f", *module.schema_from_function(f), f).call({{"a": 1}}) == 1
assert "asyncio" not in sys.modules, "a sync tool call imported asyncio"
async def g() -> int:
    return 2
assert module.Tool("g", *module.schema_from_function(g), g).call({{}}) == 2
assert "asyncio" in sys.modules
"""


def test_importing_tools_is_stdlib_only_and_light() -> None:
    result = subprocess.run([sys.executable, "-I", "-S", "-B", "-c", IMPORT_CHECK],
                            capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    new_modules = set(eval(result.stdout))  # a printed list of module names
    heavy = {"asyncio", "importlib.metadata", "typing", "inspect", "dataclasses", "enum", "re",
             "json", "msgpack", "isolator", "hostbridge"}
    assert not new_modules & heavy, new_modules


# Run by every interpreter this machine has (3.10 to 3.13): the same answers everywhere.
CROSS_VERSION = '''
from __future__ import annotations
import dataclasses, enum, importlib.util, json, sys
from typing import Literal, Optional, List, Sequence, TypedDict

spec = importlib.util.spec_from_file_location("tools", sys.argv[1])
T = importlib.util.module_from_spec(spec)
spec.loader.exec_module(T)


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Point:
    x: int
    y: int = 0


class Opts(TypedDict, total=False):
    verbose: bool


def f(text: str, n: int = None, tags: list[int] | None = None, old: Optional[List[str]] = None,
      mode: Literal["a", "b"] = "a", color: Color = Color.RED, p: Point | None = None,
      seq: Sequence[float] = (), pair: tuple[int, str] = (1, "x"), o: Opts | None = None,
      **more: bool) -> str:
    """Summary line.

    Args:
        text: the text
        n (int): a number
    """
    return repr((text, n, tags, old, mode, color, p, seq, pair, o, more))


async def g(x: int) -> dict:
    return {"x": x, "p": Point(x), "c": Color.BLUE, "t": (1, 2), "b": b"x"}


out = {"schema": T.schema_from_function(f)}
tool = T.Tool("f", *T.schema_from_function(f), f)
out["call"] = tool.call({"text": "t", "color": "blue", "p": {"x": 1}, "pair": [2, "y"],
                         "flag": True})
errors = []
for bad in ({}, {"text": 1}, {"text": "t", "n": 1.5}, {"text": "t", "tags": [1, "2"]},
            {"text": "t", "mode": "c"}, {"text": "t", "color": "green"},
            {"text": "t", "p": {"y": 1}}, {"text": "t", "flag": 1}, {"text": "t", "n": True}):
    try:
        tool.call(bad)
    except T.ArgumentsError as exc:
        errors.append(str(exc))
out["errors"] = errors
out["async"] = T.to_content(T.Tool("g", *T.schema_from_function(g), g).call({"x": 3}))
out["async"]["b"] = out["async"]["b"].decode()
print(json.dumps(out, sort_keys=True))
'''


def _cross_version(python: str) -> dict[str, Any]:
    result = subprocess.run([python, "-I", "-S", "-B", "-c", CROSS_VERSION, str(TOOLS_PATH)],
                            capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("version", ["3.10", "3.12", "3.13"])
def test_same_answers_on_other_pythons(version: str) -> None:
    reference = _cross_version(sys.executable)
    assert reference["errors"] == [
        "arguments: missing required property 'text'",
        "arguments.text: expected string, got integer 1",
        "arguments.n: expected integer or null, got number 1.5",
        'arguments.tags[1]: expected integer, got string "2"',
        'arguments.mode: expected one of "a", "b", got string "c"',
        'arguments.color: expected one of "red", "blue", got string "green"',
        "arguments.p: missing required property 'x'",
        "arguments.flag: expected boolean, got integer 1",
        "arguments.n: expected integer or null, got boolean true",
    ]
    assert reference["async"] == {"x": 3, "p": {"x": 3, "y": 0}, "c": "blue", "t": [1, 2],
                                  "b": "x"}
    assert "Color.BLUE" in reference["call"]
    assert "Point(x=1, y=0)" in reference["call"]
    try:
        python = find_python(version)
    except InterpreterNotFoundError:
        pytest.skip(f"no Python {version} on this machine")
    assert _cross_version(str(python.path)) == reference
