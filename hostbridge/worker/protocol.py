"""MessagePack-RPC without I/O: bytes in, messages out; a message in, bytes out.

The wire format is Neovim's msgpack-rpc: consecutive MessagePack objects on a stream, no length
prefix, each one of::

    [0, msgid, method, params]    Request       (msgid: 0..2**32-1, method: str, params: array)
    [1, msgid, error, result]     Response      (error is nil on success)
    [2, method, params]           Notification  (no response)

Either side may send requests. :class:`Connection` is the sans-I/O core (as h11's): feed it what
the transport read with :meth:`Connection.receive_data` and get the complete messages back; turn
a message into the bytes to write with :meth:`Connection.send`. Unpacking is bounded
(:class:`Limits`): message size, str/bin/array/map lengths, nesting depth and the memory a
message takes once decoded (estimated as it decodes). A byte stream cannot resynchronise, so any
protocol error closes the connection for good.

This module runs inside plugin workers (Python 3.10-3.13, ``python -I -S``) as well as in the
host: it imports nothing but ``msgpack``. Not even :mod:`dataclasses` (10-25 ms to import, more
than msgpack itself): the message classes are small hand-written frozen records.
Threads: :meth:`Connection.send` touches no receiving state, so one thread may send while
another receives; concurrent calls of :meth:`~Connection.receive_data` (or of
:meth:`~Connection.next_msgid`) need the caller's lock, and so does keeping the bytes of
concurrent sends in order on the transport.
"""

from __future__ import annotations

import msgpack  # type: ignore[import-untyped]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

PROTOCOL_VERSION = 1
REQUEST, RESPONSE, NOTIFICATION = 0, 1, 2

_MAX_MSGID = 0xFFFF_FFFF
# An unpacker whose buffer may have grown past this is replaced once no message is pending,
# so one huge message does not pin its buffer for the life of the connection.
_KEEP_BUFFER = 4 << 20
# Each text in error_data() is cut to this many characters (head and tail kept).
_MAX_ERROR_TEXT = 1 << 16
_MAX_REASON = 200

_set = object.__setattr__


class ProtocolError(Exception):
    """The peer broke the protocol; the connection is dead."""


class _Record:
    """Base of the frozen value classes: equality, hash, repr, pickling by fields.

    A message also has ``size``: the bytes it took on the wire when it was received (0 for a
    message made here). It is not one of its fields: equal messages may differ in size.
    """

    __slots__ = ()
    __match_args__: tuple[str, ...] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__match_args__)

    if not TYPE_CHECKING:  # hidden from type checkers, which then still flag unknown names

        def __setattr__(self, name: str, value: object) -> None:
            raise AttributeError(f"cannot assign to field {name!r} of a frozen "
                                 f"{type(self).__name__}")

        def __delattr__(self, name: str) -> None:
            raise AttributeError(f"cannot delete field {name!r} of a frozen "
                                 f"{type(self).__name__}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__match_args__)
        return f"{type(self).__name__}({fields})"

    def __reduce__(self) -> tuple[type[_Record], tuple[Any, ...]]:
        return type(self), self._values()


class Request(_Record):
    """A call, answered by the Response with the same msgid: ``[0, msgid, method, params]``."""

    __slots__ = ("method", "msgid", "params", "size")
    __match_args__ = ("msgid", "method", "params")
    msgid: int
    method: str
    params: list[Any]
    size: int

    def __init__(self, msgid: int, method: str, params: list[Any]) -> None:
        _set(self, "msgid", msgid)
        _set(self, "method", method)
        _set(self, "params", params)
        _set(self, "size", 0)


class Response(_Record):
    """The answer to the :class:`Request` with the same msgid: ``[1, msgid, error, result]``."""

    __slots__ = ("error", "msgid", "result", "size")
    __match_args__ = ("msgid", "error", "result")
    msgid: int
    error: object
    result: object
    size: int

    def __init__(self, msgid: int, error: object, result: object) -> None:
        _set(self, "msgid", msgid)
        _set(self, "error", error)
        _set(self, "result", result)
        _set(self, "size", 0)


class Notification(_Record):
    """A one-way message, never answered: ``[2, method, params]``."""

    __slots__ = ("method", "params", "size")
    __match_args__ = ("method", "params")
    method: str
    params: list[Any]
    size: int

    def __init__(self, method: str, params: list[Any]) -> None:
        _set(self, "method", method)
        _set(self, "params", params)
        _set(self, "size", 0)


Message = Request | Response | Notification


class Limits(_Record):
    """Bounds on what a :class:`Connection` accepts (and, so that the peer accepts it, sends).

    ``max_buffer`` bounds the bytes held for an incomplete message, so it is also the largest
    message. ``max_depth`` counts the message's own array as level 1: a request's params are
    level 2, a list inside them level 3.

    ``max_decoded`` bounds the memory one message takes once decoded, as estimated while it
    decodes (:func:`decoded_cost`): each array or map costs 64 bytes, and each of its items 64
    more (its slot and the object in it), each entry of a map 160. The bytes bound the rest:
    a str or bin takes at most 4 times its bytes (a str with one character beyond U+FFFF is
    stored 4 bytes a character). Without it, 63 MiB of empty maps (1 byte each on the wire,
    about 80 once decoded) would take 5 GiB.
    """

    __slots__ = ("max_array", "max_bin", "max_buffer", "max_decoded", "max_depth", "max_map",
                 "max_str")
    __match_args__ = ("max_buffer", "max_bin", "max_str", "max_array", "max_map", "max_depth",
                      "max_decoded")
    max_buffer: int
    max_bin: int
    max_str: int
    max_array: int
    max_map: int
    max_depth: int
    max_decoded: int

    def __init__(self, *, max_buffer: int = 64 << 20, max_bin: int = 64 << 20,
                 max_str: int = 16 << 20, max_array: int = 1 << 20, max_map: int = 1 << 20,
                 max_depth: int = 64, max_decoded: int = 256 << 20) -> None:
        for name, value in zip(self.__match_args__,
                               (max_buffer, max_bin, max_str, max_array, max_map, max_depth,
                                max_decoded),
                               strict=True):
            if type(value) is not int or value < 1:
                raise ValueError(f"Limits.{name} must be a positive int, not {value!r}")
            _set(self, name, value)


# The estimate of decoded memory (Limits.max_decoded): an array or a map, an item of an array
# (a slot, and the int, float or short str in it), an entry of a map (its share of the table,
# the key and the value). Containers inside are charged again as containers.
_CONTAINER_COST = 64
_ITEM_COST = 64
_ENTRY_COST = 2 * _ITEM_COST + 32


def decoded_cost(container: list[Any] | dict[Any, Any]) -> int:
    """What one decoded array or map is charged against ``Limits.max_decoded`` (not counting
    the containers inside it, which are charged for themselves)."""
    if type(container) is dict:
        return _CONTAINER_COST + _ENTRY_COST * len(container)
    return _CONTAINER_COST + _ITEM_COST * len(container)


class _Budget:
    """Charges each container as the unpacker completes it (its list and object hooks: O(1)
    each), and fails the message that goes over ``max_decoded``, before it is whole."""

    __slots__ = ("limit", "spent")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.spent = 0

    def list_hook(self, value: list[Any]) -> list[Any]:
        self.spent += _CONTAINER_COST + _ITEM_COST * len(value)
        if self.spent > self.limit:
            self._over()
        return value

    def map_hook(self, value: dict[Any, Any]) -> dict[Any, Any]:
        self.spent += _CONTAINER_COST + _ENTRY_COST * len(value)
        if self.spent > self.limit:
            self._over()
        return value

    def _over(self) -> NoReturn:
        raise ProtocolError(f"a message decodes to more than max_decoded ({self.limit} bytes, "
                            "estimated)")


_DEFAULT_LIMITS = Limits()


class Connection:
    """One end of a msgpack-rpc stream, without I/O (see the module docstring)."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = _DEFAULT_LIMITS if limits is None else limits
        self._closed = False
        self._reason = ""
        self._eof = False
        self._next_msgid = 0
        self._unpacker: Any = None
        self._fed = 0  # bytes fed to the current unpacker
        self._end = 0  # where its last complete message ended
        self._grown = False
        self._budget = _Budget(self.limits.max_decoded)
        self._new_unpacker()

    @property
    def closed(self) -> bool:
        """True after a protocol error or :meth:`close`: every later call raises ProtocolError."""
        return self._closed

    def close(self) -> None:
        """Mark the connection dead (idempotent); the transport is the caller's to close."""
        self._fail("the connection was closed")

    def next_msgid(self) -> int:
        """A fresh msgid for a request: 0, 1, 2, ..., wrapping at 2**32."""
        msgid = self._next_msgid
        self._next_msgid = (msgid + 1) & _MAX_MSGID
        return msgid

    def send(self, message: Message) -> bytes:
        """The bytes to write for *message*.

        Raises :class:`ProtocolError` if the connection is closed, and ``TypeError`` or
        ``ValueError`` (the connection stays usable) for a message that cannot be encoded or
        that this connection's limits would refuse on receipt: unsupported types, ints beyond
        64 bits, lone surrogates, map keys that are not str or bytes, ext types, too long,
        too large or too deep.
        """
        if self._closed:
            raise ProtocolError(self._reason)
        return _pack(message, self.limits)

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Message]:
        """Feed bytes read from the peer; return every message now complete, in order.

        ``b""`` means end of stream: a partial message still buffered is then a protocol error.
        Any malformed input (bad msgpack, wrong shape, msgid not an int in 0..2**32-1, method
        not a str, params not an array, ext types, map keys other than str/bytes, a limit
        exceeded) raises :class:`ProtocolError` and closes the connection; so does any call
        after that. Whole messages that precede the error in the same *data* are dropped with
        it. *data* may be any bytes-like object.
        """
        if self._closed:
            raise ProtocolError(self._reason)
        if not data:
            if self._fed != self._end:
                self._fail(f"end of stream inside a message ({self._fed - self._end} bytes)")
                raise ProtocolError(self._reason)
            self._eof = True
            return []
        if self._eof:
            self._fail("data after the end of the stream")
            raise ProtocolError(self._reason)
        if type(data) is not bytes:
            data = memoryview(data).cast("B")  # a caller's TypeError, not the peer's
        messages: list[Message] = []
        try:
            self._receive(data, messages)
        except ProtocolError as exc:
            self._fail(str(exc))
            raise
        except (msgpack.UnpackException, ValueError, TypeError, RecursionError,
                MemoryError) as exc:
            # FormatError, StackError, ExtraData are ValueErrors; BufferFull and OutOfData
            # cannot happen as this feeds, but are covered by UnpackException. MemoryError:
            # the C unpacker preallocates each array its header announces (up to max_array).
            self._fail(f"invalid msgpack: {_exc_text(exc)}")
            raise ProtocolError(self._reason) from exc
        except BaseException:
            self._fail("interrupted while unpacking")  # the stream position is unknown
            raise
        if self._grown and self._fed == self._end:
            self._new_unpacker()  # between messages a fresh unpacker loses nothing
        return messages

    # ---- internals ---------------------------------------------------------------------------

    def _receive(self, data: bytes | memoryview, messages: list[Message]) -> None:
        max_buffer = self.limits.max_buffer
        unpacker = self._unpacker
        total = len(data)
        offset = 0
        while offset < total:
            pending = self._fed - self._end
            room = max_buffer - pending
            if room <= 0:
                raise ProtocolError(f"a message is larger than max_buffer ({max_buffer} bytes)")
            # Never more than the room left, so the unpacker's own BufferFull cannot happen
            # and many small messages in one huge read are fine.
            size = total - offset
            if size <= room:
                chunk = data if offset == 0 else memoryview(data)[offset:]
            else:
                size = room
                chunk = memoryview(data)[offset : offset + size]
            if pending + size > _KEEP_BUFFER:
                self._grown = True
            unpacker.feed(chunk)
            offset += size
            self._fed += size
            end = self._end
            max_depth = self.limits.max_depth
            budget = self._budget
            for obj in unpacker:
                budget.spent = 0  # what the next message costs, from here on
                position = unpacker.tell()
                messages.append(_message(obj, position - end, max_depth))
                end = position
            self._end = end

    def _new_unpacker(self) -> None:
        limits = self.limits
        self._unpacker = msgpack.Unpacker(
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_buffer_size=limits.max_buffer,
            max_bin_len=limits.max_bin,
            max_str_len=limits.max_str,
            max_array_len=limits.max_array,
            max_map_len=limits.max_map,
            max_ext_len=0,
            ext_hook=_refuse_ext,
            list_hook=self._budget.list_hook,
            object_hook=self._budget.map_hook,
        )
        self._budget.spent = 0
        self._fed = self._end = 0
        self._grown = False

    def _fail(self, reason: str) -> None:
        if not self._closed:
            self._closed = True
            self._reason = f"connection closed: {reason}"
            self._unpacker = None


def pack(message: Message) -> bytes:
    """The wire bytes of *message*, checked against the default :class:`Limits`.

    Raises ``TypeError`` or ``ValueError`` as :meth:`Connection.send` does.
    """
    return _pack(message, _DEFAULT_LIMITS)


def error_data(exc: BaseException, tb: str | None = None) -> dict[str, str]:
    """An exception as data for a :class:`Response`'s error.

    ``{"type": "ValueError" or "package.module.Name", "message": str(exc), "traceback": tb}``;
    texts are made encodable (lone surrogates escaped) and cut to 64 Ki characters.
    """
    cls = type(exc)
    module = getattr(cls, "__module__", None)
    name = cls.__qualname__ if module in (None, "builtins") else f"{module}.{cls.__qualname__}"
    try:
        message = str(exc)
    except Exception:  # a broken __str__ must not break error reporting
        message = f"<unprintable {name} object>"
    return {"type": _text(name), "message": _text(message), "traceback": _text(tb or "")}


# ---- receiving --------------------------------------------------------------------------------


def _message(obj: object, size: int, max_depth: int) -> Message:
    """Check one unpacked object's shape (and depth) and make it a message."""
    if type(obj) is not list or not obj:
        raise ProtocolError(f"a message must be a non-empty array, not {_describe(obj)}")
    kind = obj[0]
    length = len(obj)
    message: Message
    if type(kind) is not int:
        raise ProtocolError(f"bad message type {_describe(kind)}")
    if kind == REQUEST:
        if length != 4:
            raise ProtocolError(f"a request has 4 elements, not {length}")
        _, msgid, method, params = obj
        if type(msgid) is not int or not 0 <= msgid <= _MAX_MSGID:
            _bad("msgid must be an int in 0..2**32-1", msgid)
        if type(method) is not str:
            _bad("method must be a str", method)
        if type(params) is not list:
            _bad("params must be an array", params)
        message = Request(msgid, method, params)
    elif kind == RESPONSE:
        if length != 4:
            raise ProtocolError(f"a response has 4 elements, not {length}")
        _, msgid, error, result = obj
        if type(msgid) is not int or not 0 <= msgid <= _MAX_MSGID:
            _bad("msgid must be an int in 0..2**32-1", msgid)
        message = Response(msgid, error, result)
    elif kind == NOTIFICATION:
        if length != 3:
            raise ProtocolError(f"a notification has 3 elements, not {length}")
        _, method, params = obj
        if type(method) is not str:
            _bad("method must be a str", method)
        if type(params) is not list:
            _bad("params must be an array", params)
        message = Notification(method, params)
    else:
        raise ProtocolError(f"bad message type {_describe(kind)}")
    _set(message, "size", size)
    # Every array or map takes at least one byte, so a short message cannot be too deep.
    if size > max_depth and _too_deep(obj, max_depth):
        raise ProtocolError(f"nesting deeper than max_depth ({max_depth})")
    return message


def _bad(what: str, value: object) -> NoReturn:
    raise ProtocolError(f"{what}, not {_describe(value)}")


def _too_deep(obj: list[Any], max_depth: int) -> bool:
    """Whether arrays/maps nest deeper than *max_depth* (breadth-first: no recursion, and
    no per-node tuples; the work is linear in the message's size)."""
    level: list[Any] = [obj]
    depth = 1
    while level:
        if depth > max_depth:
            return True
        below: list[Any] = []
        for node in level:
            for child in node.values() if type(node) is dict else node:
                if type(child) is list or type(child) is dict:
                    below.append(child)
        level = below
        depth += 1
    return False


def _refuse_ext(code: int, data: bytes) -> object:
    raise ValueError(f"ext type {code} is not part of the protocol")


# ---- sending ----------------------------------------------------------------------------------


def _pack(message: Message, limits: Limits) -> bytes:
    if isinstance(message, Request):
        _check_msgid(message.msgid)
        _check_str(message.method, "method", limits)
        _check_list(message.params)
        obj: list[Any] = [REQUEST, message.msgid, message.method, message.params]
        _check_payload([message.params], limits, decoded_cost(obj))
    elif isinstance(message, Response):
        _check_msgid(message.msgid)
        obj = [RESPONSE, message.msgid, message.error, message.result]
        _check_payload([message.error, message.result], limits, decoded_cost(obj))
    elif isinstance(message, Notification):
        _check_str(message.method, "method", limits)
        _check_list(message.params)
        obj = [NOTIFICATION, message.method, message.params]
        _check_payload([message.params], limits, decoded_cost(obj))
    else:
        raise TypeError(f"not a message: {type(message).__name__}")
    try:
        data: bytes = msgpack.Packer(use_bin_type=True).pack(obj)
    except OverflowError as exc:
        raise ValueError(f"cannot encode: {exc}") from exc
    except RecursionError as exc:  # the pure-Python packer on a cycle
        raise ValueError("cannot encode: nesting too deep") from exc
    if len(data) > limits.max_buffer:
        raise ValueError(f"message of {len(data)} bytes exceeds max_buffer "
                         f"({limits.max_buffer})")
    return data


def _check_msgid(msgid: object) -> None:
    if not isinstance(msgid, int) or isinstance(msgid, bool):
        raise TypeError(f"msgid must be an int, not {type(msgid).__name__}")
    if not 0 <= msgid <= _MAX_MSGID:
        raise ValueError(f"msgid must be in 0..2**32-1, not {msgid}")


def _check_list(params: object) -> None:
    if not isinstance(params, list):
        raise TypeError(f"params must be a list, not {type(params).__name__}")


def _check_str(value: object, what: str, limits: Limits) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    # UTF-8 takes 1 to 4 bytes a character: encode only when the length alone cannot decide.
    if len(value) * 4 > limits.max_str and (
        len(value) > limits.max_str or len(value.encode("utf-8")) > limits.max_str
    ):
        raise ValueError(f"a str is longer than max_str ({limits.max_str} bytes)")


_SCALARS = frozenset({int, float, bool, type(None)})


def _check_payload(values: list[Any], limits: Limits, cost: int) -> None:
    """Refuse what the peer's unpacker would refuse (with limits like ours), so that a bad
    payload is this call's error and not the death of the connection. *cost*: what the
    message's own array is charged against ``max_decoded``.

    Breadth-first, one level of values at a time (no recursion; a cycle fails as too deep):
    the common types are tested by identity and the children of a container are gathered in
    C (``list.extend``), so the cost per element is small.
    """
    max_depth, max_array, max_map = limits.max_depth, limits.max_array, limits.max_map
    max_bin, short_str = limits.max_bin, limits.max_str // 4  # UTF-8: at most 4 bytes a char
    scalars = _SCALARS
    depth = 2  # the message's own array is level 1
    while values:
        below: list[Any] = []
        for value in values:
            kind = type(value)
            if kind in scalars:
                continue
            if kind is str:
                if len(value) > short_str:
                    _check_str(value, "a value", limits)
            elif kind is list or kind is tuple:
                if depth > max_depth:
                    raise ValueError(f"nesting deeper than max_depth ({max_depth})")
                if len(value) > max_array:
                    raise ValueError(f"an array has more than max_array ({max_array}) items")
                cost += _CONTAINER_COST + _ITEM_COST * len(value)
                below.extend(value)
            elif kind is dict:
                if depth > max_depth:
                    raise ValueError(f"nesting deeper than max_depth ({max_depth})")
                if len(value) > max_map:
                    raise ValueError(f"a map has more than max_map ({max_map}) items")
                for key in value:
                    if type(key) is not str or len(key) > short_str:
                        _check_key(key, limits)
                cost += _CONTAINER_COST + _ENTRY_COST * len(value)
                below.extend(value.values())
            elif kind is bytes:
                if len(value) > max_bin:
                    _check_bin(value, limits)
            else:
                cost += _check_other(value, depth, below, limits)
        if cost > limits.max_decoded:
            raise ValueError(f"the message would decode to more than max_decoded "
                             f"({limits.max_decoded} bytes, estimated)")
        values = below
        depth += 1


def _check_other(value: object, depth: int, below: list[Any], limits: Limits) -> int:
    """The rare types: subclasses, bytearray, memoryview, ext types. What *value* costs
    against ``max_decoded``."""
    if isinstance(value, (msgpack.ExtType, msgpack.Timestamp)):  # ExtType is a tuple
        raise ValueError("ext types are not part of the protocol")
    if isinstance(value, (list, tuple, dict)):
        if depth > limits.max_depth:
            raise ValueError(f"nesting deeper than max_depth ({limits.max_depth})")
        if isinstance(value, dict):
            if len(value) > limits.max_map:
                raise ValueError(f"a map has more than max_map ({limits.max_map}) items")
            for key in value:
                _check_key(key, limits)
            below.extend(value.values())
            return _CONTAINER_COST + _ENTRY_COST * len(value)
        if len(value) > limits.max_array:
            raise ValueError(f"an array has more than max_array ({limits.max_array}) "
                             f"items")
        below.extend(value)
        return _CONTAINER_COST + _ITEM_COST * len(value)
    if isinstance(value, str):
        _check_str(value, "a value", limits)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        _check_bin(value, limits)
    # Anything else is msgpack's to accept (int subclasses) or refuse (TypeError).
    return 0


def _check_key(key: object, limits: Limits) -> None:
    if isinstance(key, str):
        _check_str(key, "a map key", limits)
    elif isinstance(key, bytes):
        _check_bin(key, limits)
    else:
        raise ValueError(f"map keys must be str or bytes, not {type(key).__name__}")


def _check_bin(value: bytes | bytearray | memoryview, limits: Limits) -> None:
    size = value.nbytes if isinstance(value, memoryview) else len(value)
    if size > limits.max_bin:
        raise ValueError(f"a bytes value is longer than max_bin ({limits.max_bin} bytes)")


# ---- text -------------------------------------------------------------------------------------


def _describe(value: object) -> str:
    """A short description of a bad value for an error message (never a huge repr)."""
    if value is None or type(value) in (int, bool, float):
        text = repr(value)
        return text if len(text) <= 40 else type(value).__name__
    return type(value).__name__


def _exc_text(exc: BaseException) -> str:
    text = str(exc)
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


def _text(text: str) -> str:
    if len(text) > _MAX_ERROR_TEXT:
        half = _MAX_ERROR_TEXT // 2
        text = f"{text[:half]}\n[... {len(text) - 2 * half} characters cut ...]\n{text[-half:]}"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
