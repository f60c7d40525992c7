"""The Python worker's checks of a function's signature against its bindings (docs §2.7, §3.3-3.5).

`check_signature(name, function)` follows the worker's `Registry.add_indexed_function`: binding
directions, the `context` parameter, parameters vs bindings, `Out[T]` annotations, the annotation
each binding type's converter accepts, and the return annotation; every failure raises
`FunctionLoadError("cannot load the <name> function: ...")` with the worker's wording.
"""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from typing import Any

import azure.functions as func

from funcemu.errors import FuncemuError

IN, OUT, INOUT = 0, 1, 2  # BindingDirection values, as `Binding.direction` reports them
GENERIC = "generic"
_NOT_GENERIC = (typing.Union, tuple, typing.ClassVar, collections.abc.Callable, types.UnionType)


class FunctionLoadError(FuncemuError):
    def __init__(self, function_name: str, message: str) -> None:
        super().__init__(f"cannot load the {function_name} function: {message}")


def check_signature(name: str, function: Any) -> None:
    """Raise FunctionLoadError where the worker would refuse `function` (an azure.functions Function)."""
    user = function.get_user_function()
    params = dict(inspect.signature(user).parameters)
    hints = typing.get_type_hints(user)
    bound, return_type = _bound_parameters(name, function.get_bindings())
    if "context" in params and "context" not in bound:
        params.pop("context")
        _check_context(name, hints)
    _check_names(name, set(params), set(bound))
    for param in params:
        _check_parameter(name, param, bound[param], hints)
    if return_type is not None and "return" in hints:
        _check_return(name, return_type, hints["return"])


def has_implicit_output(binding_type: str) -> bool:
    """Converters with an implicit output (durable triggers; generic bindings except durableClient)."""
    converter = func.get_binding_registry().get(binding_type)
    if converter is None:
        return binding_type != "durableClient"
    return bool(getattr(converter, "has_implicit_output", lambda: False)())


def _bound_parameters(name: str, bindings: list[Any]) -> tuple[dict[str, Any], str | None]:
    """Bindings by parameter name, and the type of the `$return` binding (None without one)."""
    bound: dict[str, Any] = {}
    return_type = None
    for binding in bindings:
        if binding.direction == INOUT:
            raise FunctionLoadError(name, '"inout" bindings are not supported')
        if binding.name == "$return":
            if binding.direction != OUT:
                raise FunctionLoadError(name, '"$return" binding must have direction set to "out"')
            return_type = return_type or binding.type
        else:
            bound[binding.name] = binding
    return bound, return_type


def _check_context(name: str, hints: dict[str, Any]) -> None:
    annotation = hints.get("context")
    if "context" in hints and (not isinstance(annotation, type) or annotation.__name__ != "Context"):
        raise FunctionLoadError(name, 'the "context" parameter is expected to be of type '
                                f"azure.functions.Context, got {annotation!r}")


def _check_names(name: str, params: set[str], bound: set[str]) -> None:
    if params - bound:
        raise FunctionLoadError(name, "the following parameters are declared in Python but not in "
                                f"function.json: {params - bound!r}")
    if bound - params:
        raise FunctionLoadError(name, "the following parameters are declared in function.json but not in "
                                f"Python: {bound - params!r}")


def _check_parameter(name: str, param: str, binding: Any, hints: dict[str, Any]) -> None:
    if param not in hints:
        return
    annotation = hints[param]
    is_out = _is_out(annotation)
    py_type = annotation
    if is_out:
        args = typing.get_args(annotation)
        if len(args) != 1:
            raise FunctionLoadError(name, f"binding {param} has invalid Out annotation {annotation!r}")
        py_type = args[0]
    if not isinstance(py_type, type) and not _is_generic(py_type):
        raise FunctionLoadError(name, f"binding {param} has invalid non-type annotation {annotation!r}")
    if binding.direction == OUT and not is_out:
        raise FunctionLoadError(name, f'binding {param} is declared to have the "out" direction, but its '
                                "annotation in Python is not a subclass of azure.functions.Out")
    if binding.direction != OUT and is_out:
        raise FunctionLoadError(name, f'binding {param} is declared to have the "in" direction in '
                                "function.json, but its annotation is azure.functions.Out in Python")
    generic = py_type in (str, bytes) and not has_implicit_output(binding.type)
    checker = _accepts_output if is_out else _accepts_input
    if not checker(GENERIC if generic else binding.type, py_type):
        raise FunctionLoadError(name, f'{param!r} binding type "{binding.type}" and dataType '
                                f'"{binding.data_type}" in function.json do not match the corresponding '
                                f'function parameter\'s Python type annotation "{py_type.__name__}"')


def _check_return(name: str, binding_type: str, annotation: Any) -> None:
    if _is_generic(annotation) and _is_out(annotation):
        raise FunctionLoadError(name, "return annotation should not be azure.functions.Out")
    if not isinstance(annotation, type):
        raise FunctionLoadError(name, f"has invalid non-type return annotation {annotation!r}")
    if not _accepts_output(binding_type, annotation):
        raise FunctionLoadError(name, f'Python return annotation "{annotation.__name__}" does not match '
                                f'binding type "{binding_type}"')


def _is_out(annotation: Any) -> bool:
    """`func.Out[...]` or `func.Out` (the worker compares the class name)."""
    origin = typing.get_origin(annotation) or annotation
    return isinstance(origin, type) and origin.__name__ == "Out"


def _is_generic(annotation: Any) -> bool:
    """typing_inspect.is_generic_type: a Generic class or a parametrized alias (not Union, Callable, ...)."""
    if isinstance(annotation, type) and not isinstance(annotation, types.GenericAlias):
        return issubclass(annotation, typing.Generic)  # type: ignore[arg-type]
    origin = typing.get_origin(annotation)
    return origin is not None and origin not in _NOT_GENERIC


def _accepts_input(binding_type: str, py_type: Any) -> bool:
    converter = None if binding_type == GENERIC else func.get_binding_registry().get(binding_type)
    if converter is None:
        return issubclass(py_type, (str, bytes))
    return bool(converter.check_input_type_annotation(py_type))


def _accepts_output(binding_type: str, py_type: Any) -> bool:
    converter = None if binding_type == GENERIC else func.get_binding_registry().get(binding_type)
    if converter is None:
        return issubclass(py_type, (str, bytes, bytearray))
    return bool(converter.check_output_type_annotation(py_type))
