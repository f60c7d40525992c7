"""Input providers and output writers for non-trigger bindings, by binding type.

The HTTP server, the trigger listeners and the durable engine all call a function the same way:
`gather_inputs` fills every IN binding that is not the trigger, `write_outputs` performs the side
effects of OUT bindings (queue messages, blobs, table rows) after a successful invocation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from funcemu.app import FunctionSpec
from funcemu.errors import FuncemuError

# (spec, binding, trigger metadata) -> value passed to the function
InputProvider = Callable[[FunctionSpec, dict[str, Any], dict[str, Any]], Awaitable[Any]]
# (spec, binding, value set by the function, trigger metadata) -> None
OutputWriter = Callable[[FunctionSpec, dict[str, Any], Any, dict[str, Any]], Awaitable[None]]


class BindingError(FuncemuError):
    pass


class BindingRegistry:
    def __init__(self) -> None:
        self.inputs: dict[str, InputProvider] = {}
        self.outputs: dict[str, OutputWriter] = {}

    def add_input(self, binding_type: str, provider: InputProvider) -> None:
        self.inputs[binding_type] = provider

    def add_output(self, binding_type: str, writer: OutputWriter) -> None:
        self.outputs[binding_type] = writer

    async def gather_inputs(self, spec: FunctionSpec, metadata: dict[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for binding in spec.input_bindings:
            if binding is spec.trigger:
                continue
            provider = self.inputs.get(binding["type"])
            if provider is None:
                raise BindingError(f"Function '{spec.name}': no provider for input binding "
                                   f"'{binding['name']}' of type '{binding['type']}'")
            values[binding["name"]] = await provider(spec, binding, metadata)
        return values

    async def write_outputs(self, spec: FunctionSpec, outputs: dict[str, Any], return_value: Any,
                            metadata: dict[str, Any]) -> None:
        """Write every OUT binding that has a writer (http is rendered by the HTTP server)."""
        for binding in spec.output_bindings:
            writer = self.outputs.get(binding["type"])
            if writer is None:
                continue
            value = return_value if binding["name"] == "$return" else outputs.get(binding["name"])
            if value is not None:
                await writer(spec, binding, value, metadata)
