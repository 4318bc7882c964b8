"""Enoki process functions in Python.

A process function is a program that a node keeps running as a worker: it reads a call from its
stdin, answers on its stdout, and in between may ask the node for store operations and calls,
all over the worker protocol of docs/functions.md. This module speaks that protocol, so a
function is a handler and one line:

    import enoki

    def handle(body: bytes) -> bytes:
        n = int(enoki.kv.get("count") or 0) + 1
        enoki.kv.put("count", str(n))
        return str(n)

    enoki.serve(handle)

`enoki.kv` reaches the function's keygroup (at this node's replica, or the nearest replica when
the node holds none), `enoki.call` calls other functions, `enoki.log` writes to the function's log
(`enoki functions logs`), and so does anything printed: stdout belongs to the protocol, so this
module sends print() output to stderr, which the node logs line by line. The node puts this
module on the worker's PYTHONPATH; it needs nothing but the standard library.
"""

import os
import re
import sys
import traceback

__all__ = ["Error", "kv", "call", "log", "param", "serve"]


class Error(Exception):
    """A store operation or call that the node answered with an error.

    `code` is the node's error code, e.g. "NOT_FOUND", "UNAVAILABLE", "FAILED_PRECONDITION".
    """

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


# The protocol's channel: the worker's original stdin and stdout, moved to descriptors of their
# own. Anything else that reads fd 0 or writes fd 1 (input(), print, a child process) would steal
# or corrupt frames, so fd 0 becomes /dev/null and fd 1 a copy of stderr.
_in = os.fdopen(os.dup(0), "rb")
_out = os.fdopen(os.dup(1), "wb")
_null = os.open(os.devnull, os.O_RDONLY)
os.dup2(_null, 0)
os.close(_null)
os.dup2(2, 1)
sys.stdin = open(os.devnull)
sys.stdout = sys.stderr


def _bytes(value):
    """bytes as they are, str as UTF-8, and numbers as their decimal text (not bytes(5), which
    is five zero bytes)."""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (int, float)):
        return str(value).encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"expected bytes, str or a number, not {type(value).__name__}")


def _send(verb, *fields, number=None):
    header = [verb] + [str(len(f)) for f in fields]
    if number is not None:
        header.append(str(number))
    _out.write(" ".join(header).encode() + b"\n" + b"".join(fields))
    _out.flush()


def _read_header():
    """The words of the node's next header line; None at end of input."""
    line = _in.readline()
    if not line:
        return None
    return line.decode().split()


def _fields(lengths):
    out = []
    for n in lengths:
        data = _in.read(int(n))
        if len(data) != int(n):
            raise EOFError("the node closed the worker's input")
        out.append(data)
    return out


def _request(verb, *fields, number=None):
    """Sends a request frame; returns the fields of the node's "ok" reply or raises Error."""
    _send(verb, *(_bytes(f) for f in fields), number=number)
    words = _read_header()
    if words is None:
        raise EOFError("the node closed the worker's input")
    if words[0] == "ok":  # ok N1 N2 ...
        return _fields(words[1:])
    if words[0] == "error":  # error CODE N
        (message,) = _fields(words[2:])
        raise Error(words[1], message.decode(errors="replace"))
    raise RuntimeError(f"unexpected reply '{words[0]}' from the node")


class _Kv:
    """The function's keygroup. Keys are str; values come back as bytes (str and numbers are
    accepted, as their UTF-8 and decimal text)."""

    def get(self, key):
        """The value of `key`, or None when it is absent."""
        return self.get_versioned(key)[0]

    def get_versioned(self, key):
        """(value, version) of `key`; (None, "") when absent. The version is a token for put."""
        try:
            value, version = _request("get", key)
        except Error as e:
            if e.code == "NOT_FOUND":
                return None, ""
            raise
        return value, version.decode()

    def put(self, key, value, if_version=None):
        """Writes `key`. With `if_version` (a token from get_versioned; "" for "still absent"),
        only if the key is still at that version: returns False when it is not, so that a
        read-modify-write can read again and retry. Returns True once the write is durable (and
        replicated, in a synchronous keygroup)."""
        fields = [key, value] if if_version is None else [key, value, if_version]
        try:
            _request("put", *fields)
        except Error as e:
            if if_version is not None and e.code == "FAILED_PRECONDITION":
                return False
            raise
        return True

    def delete(self, key):
        """Deletes `key` (deleting an absent key is not an error)."""
        _request("delete", key)

    def scan(self, start="", end="", limit=0):
        """[(key, value)] with start <= key < end (end "": no bound), in key order, at most
        `limit` items (0: the node's default, 1000)."""
        fields = _request("scan", start, end, number=limit)
        return [(fields[i].decode(), fields[i + 1]) for i in range(0, len(fields), 2)]


kv = _Kv()


def call(function, body=b"", at="", asynchronous=False):
    """Calls `function` with `body` at node `at` ("": this node) and returns its response body.
    With `asynchronous`, returns b"" once the call was accepted (at another node: at once)."""
    return _request("call", function, body, at, number=1 if asynchronous else 0)[0]


def log(text):
    """Appends a line to the function's log."""
    _send("log", _bytes(text))


def param(name, default=None):
    """The deployment parameter `name` (enoki deploy --param NAME=VALUE), or `default`."""
    return os.environ.get("ENOKI_PARAM_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper(), default)


def serve(handler):
    """Serves calls until the node closes the worker's input: handler(body: bytes) returns the
    response (bytes, str, a number, or None for an empty body). An exception fails the call (the caller gets INTERNAL,
    HTTP 500) with its message, and its traceback goes to the function's log; the worker lives
    on for the next call."""
    while True:
        words = _read_header()
        if words is None:
            return
        if words[0] != "invoke" or len(words) != 3:
            raise RuntimeError(f"expected 'invoke ID N' from the node, got '{' '.join(words)}'")
        (body,) = _fields(words[2:])
        try:
            result = handler(body)
            result = b"" if result is None else _bytes(result)
        except Exception as e:  # the call fails, the worker does not
            traceback.print_exc()
            _send("fail", _bytes(f"{type(e).__name__}: {e}"))
            continue
        _send("return", result)
