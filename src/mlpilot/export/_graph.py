"""A small ONNX graph builder: unique value names, constants, nodes, and whole converted models
embedded under a prefix (their inputs wired to values of this graph)."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["ML_DOMAIN", "OPSET", "Graph"]

#: The default domain's opset the graph is written for (the highest onnxmltools converts to).
OPSET = 15
ML_DOMAIN = "ai.onnx.ml"
#: The ai.onnx.ml opset: LabelEncoder's string keys and integer values need version 2.
ML_OPSET = 3


class Graph:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self.opsets: dict[str, int] = {"": OPSET, ML_DOMAIN: ML_OPSET}
        self._used: set[str] = set()
        self._embedded = 0

    def name(self, hint: str) -> str:
        """A value name not used yet, from ``hint``."""
        candidate, n = hint, 1
        while candidate in self._used:
            n += 1
            candidate = f"{hint}_{n}"
        self._used.add(candidate)
        return candidate

    def input(self, name: str, elem_type: int, width: int) -> str:
        self._used.add(name)
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, [None, width]))
        return name

    def output(self, value: str, name: str, elem_type: int, shape: list[Any]) -> None:
        """Expose ``value`` as the graph output ``name``."""
        self.op("Identity", [value], name=name)
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, shape))

    def const(self, value: Any, hint: str = "const", dtype: Any = np.float64) -> str:
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(
        self,
        op_type: str,
        inputs: list[str],
        *,
        name: str | None = None,
        domain: str = "",
        outputs: int = 1,
        **attributes: Any,
    ) -> str:
        """Add a node; its (first) output's name."""
        if name is not None:
            self._used.add(name)
            names = [name]
        else:
            names = [self.name(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(
            helper.make_node(
                op_type, inputs, names, name=self.name(f"node_{op_type}"), domain=domain,
                **attributes,
            )
        )  # fmt: skip
        return names[0]

    def cast(self, value: str, to: int) -> str:
        return self.op("Cast", [value], to=to)

    def embed(self, model: onnx.ModelProto, inputs: list[str]) -> list[str]:
        """Add a converted model's nodes and constants under a fresh prefix, its inputs fed
        from ``inputs``; the names of its outputs in this graph."""
        self._embedded += 1
        prefix = f"m{self._embedded}_"
        prefixed = onnx.compose.add_prefix(model, prefix)
        graph = prefixed.graph
        if len(graph.input) != len(inputs):
            raise ValueError("one value per input of the embedded model")
        for value, feed in zip(graph.input, inputs, strict=True):
            self.op("Identity", [feed], name=value.name)
        self.nodes.extend(graph.node)
        self.initializers.extend(graph.initializer)
        for entry in prefixed.opset_import:
            domain = entry.domain or ""
            self.opsets[domain] = max(self.opsets.get(domain, 0), entry.version)
        names = [value.name for value in graph.output]
        self._used.update(names)
        return names

    def model(self, metadata: dict[str, str]) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, "mlpilot", self.inputs, self.outputs, initializer=self.initializers
        )
        opsets = [helper.make_opsetid(domain, v) for domain, v in sorted(self.opsets.items())]
        model = helper.make_model(graph, opset_imports=opsets, producer_name="mlpilot")
        model.ir_version = min(model.ir_version, 8)  # what onnxruntime releases since 1.11 read
        helper.set_model_props(model, metadata)
        onnx.checker.check_model(model)
        return model


FLOAT, DOUBLE, STRING, INT64, BOOL = (
    TensorProto.FLOAT,
    TensorProto.DOUBLE,
    TensorProto.STRING,
    TensorProto.INT64,
    TensorProto.BOOL,
)
