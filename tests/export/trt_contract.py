"""Checking edgeseg's TensorRT calls against the real Python bindings' own signatures.

TensorRT's bindings are pybind11 modules: every method and property setter carries its C++
signature in ``__doc__`` (``set_flag(self: tensorrt.IBuilderConfig, flag: tensorrt.BuilderFlag)
-> None``, with ``Overloaded function.`` and numbered lines when there are several). Over stub
libraries (``.ci/tensorrt-bindings``) the bindings import, but no builder, runtime or engine can
be created. So objects edgeseg receives from TensorRT are stood in for by :class:`Checked`: an
attribute read, a call or an assignment on it is looked up on the real class, its arguments are
matched against the real signatures (one must accept them, as pybind11's overload resolution
would), and the result is a :class:`Checked` of the declared return type, or a value the test
scripted (``answers``), so edgeseg's own functions run over it unchanged.

What this proves: the attribute exists in that version and takes what edgeseg passes, and the
return type is what edgeseg assumes. What it cannot: what TensorRT does with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

_SIG = re.compile(r"^(?:\d+\.\s+)?(?P<name>\w*)\((?P<params>.*)\)\s*->\s*(?P<ret>.+?)\s*$")


def _split_params(text: str) -> list[str]:
    """Top-level comma split (types may hold ``List[int]``, defaults may hold ``<Enum.X: 0>``)."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char in "[(<":
            depth += 1
        elif char in "])>":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current.strip())
    return parts


def signatures(function: Any) -> list[tuple[list[tuple[str, str, bool]], str]]:
    """[(params, return type)] of a pybind11 function; params are (name, type, has_default),
    ``self`` included."""
    found = []
    for line in (getattr(function, "__doc__", None) or "").splitlines():
        match = _SIG.match(line.strip())
        if match is None:
            continue
        params = []
        for part in _split_params(match.group("params")):
            name, _, rest = part.partition(":")
            kind, eq, _default = rest.partition("=")
            params.append((name.strip(), kind.strip(), bool(eq)))
        found.append((params, match.group("ret").strip()))
    return found


def short(type_name: str) -> str:
    """``tensorrt_bindings.tensorrt.IBuilderConfig`` -> ``IBuilderConfig``."""
    return type_name.rsplit(".", 1)[-1]


class Checked:
    """Stands in for an instance of ``trt.<cls>`` that cannot be created over the stubs."""

    def __init__(self, trt: Any, cls: str, answers: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "_trt", trt)
        object.__setattr__(self, "_cls", cls)
        object.__setattr__(self, "_answers", dict(answers or {}))
        object.__setattr__(self, "calls", [])
        object.__setattr__(self, "arguments", [])  # (name, args) of each call, for assertions

    def _real(self, name: str) -> Any:
        cls = getattr(self._trt, self._cls)
        if not hasattr(cls, name):
            raise AttributeError(f"TensorRT {self._trt.__version__}: {self._cls} has no {name}")
        return getattr(cls, name)

    def __getattr__(self, name: str) -> Any:
        attr = self._real(name)
        if isinstance(attr, property):
            ret = signatures(attr.fget)[0][1]
            self.calls.append(f"{self._cls}.{name}")
            return self._answer(name, ret, ())
        return lambda *args, **kwargs: self._call(name, attr, args, kwargs)

    def __setattr__(self, name: str, value: Any) -> None:
        attr = self._real(name)
        if not isinstance(attr, property) or attr.fset is None:
            raise AttributeError(
                f"TensorRT {self._trt.__version__}: {self._cls}.{name} is read-only"
            )
        problem = accepts(self._trt, attr.fset, (self, value), {})
        if problem:
            raise TypeError(f"TensorRT {self._trt.__version__}: {self._cls}.{name} = {problem}")
        self.calls.append(f"{self._cls}.{name}=")

    def _call(self, name: str, function: Any, args: tuple, kwargs: dict) -> Any:
        problem = accepts(self._trt, function, (self, *args), kwargs)
        if problem:
            raise TypeError(f"TensorRT {self._trt.__version__}: {self._cls}.{name}{problem}")
        self.calls.append(f"{self._cls}.{name}")
        self.arguments.append((name, args))
        ret = returned_type(self._trt, function, (self, *args), kwargs)
        return self._answer(name, ret, args)

    def _answer(self, name: str, ret: str, args: tuple) -> Any:
        if name in self._answers:
            answer = self._answers[name]
            return answer(*args) if callable(answer) and not isinstance(answer, Checked) else answer
        base = short(ret)
        if hasattr(self._trt, base) and isinstance(getattr(self._trt, base), type):
            return Checked(self._trt, base)
        return {"bool": True, "int": 0, "str": "", "None": None}.get(base)


def _matches(trt: Any, value: Any, type_name: str) -> bool:
    kind = short(type_name.strip())
    if isinstance(value, Checked):
        real = getattr(trt, kind, None)
        mine = getattr(trt, value._cls)
        return kind == value._cls or (isinstance(real, type) and issubclass(mine, real))
    if kind in ("object", "Any", "capsule", "CapsuleType"):
        return True
    if kind in ("int", "SupportsInt"):
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind in ("float", "SupportsFloat"):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind in ("buffer", "Buffer"):
        return isinstance(value, (bytes, bytearray, memoryview))
    if kind in ("tuple", "list"):
        return type(value).__name__ == kind
    if kind in ("Dims", "Dims32", "Dims64"):  # pybind11 converts a sequence of ints
        return isinstance(value, (tuple, list)) and all(isinstance(v, int) for v in value)
    real = getattr(trt, kind, None)
    return isinstance(real, type) and isinstance(value, real)


def _bind(trt: Any, params: list, args: tuple, kwargs: dict) -> bool:
    if len(args) > len(params):
        return False
    for (_name, kind, _default), value in zip(params, args, strict=False):
        if not _matches(trt, value, kind):
            return False
    rest = params[len(args) :]
    for name, kind, has_default in rest:
        if name in kwargs:
            if not _matches(trt, kwargs[name], kind):
                return False
        elif not has_default:
            return False
    return set(kwargs) <= {name for name, _, _ in rest}


def accepts(trt: Any, function: Any, args: tuple, kwargs: dict) -> str | None:
    """None when one of ``function``'s signatures takes ``args``/``kwargs``; else why not."""
    sigs = signatures(function)
    if not sigs:
        return f": no pybind11 signature to check against ({function!r})"
    if any(_bind(trt, params, args, kwargs) for params, _ in sigs):
        return None
    given = ", ".join(
        [type(a).__name__ if not isinstance(a, Checked) else a._cls for a in args]
        + [f"{k}={type(v).__name__}" for k, v in kwargs.items()]
    )
    wanted = " | ".join(
        "(" + ", ".join(f"{n}: {short(k)}" for n, k, _ in params) + ")" for params, _ in sigs
    )
    return f"({given}) does not fit {wanted}"


def returned_type(trt: Any, function: Any, args: tuple, kwargs: dict) -> str:
    """The declared return type of the first signature that takes the arguments."""
    for params, ret in signatures(function):
        if _bind(trt, params, args, kwargs):
            return ret
    raise TypeError("no signature takes these arguments")


def check_call(trt: Any, cls: str, name: str, *args: Any, returns: str | None = None) -> None:
    """Assert ``trt.<cls>.<name>`` exists and takes ``args`` (Checked stands in for objects);
    ``returns``: the short return type edgeseg relies on."""
    function = getattr(getattr(trt, cls), name)
    problem = accepts(trt, function, (Checked(trt, cls), *args), {})
    if problem:
        raise AssertionError(f"{cls}.{name}{problem}")
    if returns is not None:
        got = short(returned_type(trt, function, (Checked(trt, cls), *args), {}))
        if got != returns:
            raise AssertionError(f"{cls}.{name} returns {got}, edgeseg expects {returns}")


Probe = Callable[[Any], None]
