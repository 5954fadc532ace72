"""ONNX graphs for the model families, built from their parameters with ``onnx.helper``.

Every graph takes ``features`` (float32 ``[n, width]``, after preprocessing) and returns
``probability`` (float32 ``[n, 1]``). Building them needs the ``onnx`` package (the ``model``
extra); scoring only needs onnxruntime.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from clinops_common.model.package import ONNX_INPUT, ONNX_OUTPUT

OPSET = 17
ML_OPSET = 3


def _model(nodes: list[Any], initializers: list[Any], width: int, *, ml: bool = False) -> bytes:
    from onnx import TensorProto, checker, helper

    graph = helper.make_graph(
        nodes,
        "clinops",
        [helper.make_tensor_value_info(ONNX_INPUT, TensorProto.FLOAT, ["n", width])],
        [helper.make_tensor_value_info(ONNX_OUTPUT, TensorProto.FLOAT, ["n", 1])],
        initializer=initializers,
    )
    opsets = [helper.make_opsetid("", OPSET)] + ([helper.make_opsetid("ai.onnx.ml", ML_OPSET)] if ml else [])
    model = helper.make_model(graph, opset_imports=opsets, producer_name="clinops")
    model.ir_version = 8
    checker.check_model(model)
    return bytes(model.SerializeToString())


def mlp_graph(layers: Sequence[tuple[np.ndarray, np.ndarray]]) -> bytes:
    """A feed-forward net: ``Gemm`` (weights ``[out, in]`` as torch stores them) and ``Relu`` between
    layers, ``Sigmoid`` on the last layer's single logit. One layer is logistic regression."""
    from onnx import numpy_helper
    from onnx.helper import make_node

    nodes, inits = [], []
    x = ONNX_INPUT
    for i, (weight, bias) in enumerate(layers):
        w = np.asarray(weight, dtype=np.float32)
        b = np.asarray(bias, dtype=np.float32).reshape(-1)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes.append(make_node("Gemm", [x, f"w{i}", f"b{i}"], [f"z{i}"], transB=1))
        x = f"z{i}"
        if i < len(layers) - 1:
            nodes.append(make_node("Relu", [x], [f"h{i}"]))
            x = f"h{i}"
    nodes.append(make_node("Sigmoid", [x], [ONNX_OUTPUT]))
    width = int(np.asarray(layers[0][0]).shape[1])
    return _model(nodes, inits, width)


def logistic_graph(coef: Sequence[float], intercept: float) -> bytes:
    c = np.asarray(coef, dtype=np.float32).reshape(1, -1)
    return mlp_graph([(c, np.array([intercept], dtype=np.float32))])


def tree_ensemble_graph(trees: Sequence[dict[str, Any]], base_margin: float, width: int) -> bytes:
    """Additive binary trees on the logit scale (XGBoost's layout) -> ``Sigmoid(base + sum of leaves)``.

    Each tree: ``{"nodeid": [...], "split": [feature index, -1 for a leaf], "threshold": [...],
    "yes": [...], "no": [...], "missing": [...], "leaf": [...]}`` as lists over its nodes; a row goes
    to ``yes`` when ``x < threshold`` (XGBoost's rule), to ``missing`` when ``x`` is NaN."""
    from onnx.helper import make_node

    a: dict[str, list[Any]] = {
        k: []
        for k in (
            "nodes_treeids",
            "nodes_nodeids",
            "nodes_featureids",
            "nodes_modes",
            "nodes_values",
            "nodes_truenodeids",
            "nodes_falsenodeids",
            "nodes_missing_value_tracks_true",
            "target_treeids",
            "target_nodeids",
            "target_ids",
            "target_weights",
        )
    }
    for t, tree in enumerate(trees):
        for i, nid in enumerate(tree["nodeid"]):
            leaf = tree["split"][i] < 0
            a["nodes_treeids"].append(t)
            a["nodes_nodeids"].append(int(nid))
            a["nodes_featureids"].append(0 if leaf else int(tree["split"][i]))
            a["nodes_modes"].append("LEAF" if leaf else "BRANCH_LT")
            a["nodes_values"].append(0.0 if leaf else float(tree["threshold"][i]))
            a["nodes_truenodeids"].append(0 if leaf else int(tree["yes"][i]))
            a["nodes_falsenodeids"].append(0 if leaf else int(tree["no"][i]))
            a["nodes_missing_value_tracks_true"].append(0 if leaf else int(tree["missing"][i] == tree["yes"][i]))
            if leaf:
                a["target_treeids"].append(t)
                a["target_nodeids"].append(int(nid))
                a["target_ids"].append(0)
                a["target_weights"].append(float(tree["leaf"][i]))
    nodes = [
        make_node(
            "TreeEnsembleRegressor",
            [ONNX_INPUT],
            ["margin"],
            domain="ai.onnx.ml",
            n_targets=1,
            base_values=[float(base_margin)],
            aggregate_function="SUM",
            post_transform="NONE",
            **a,  # type: ignore[arg-type]
        ),
        make_node("Sigmoid", ["margin"], [ONNX_OUTPUT]),
    ]
    return _model(nodes, [], width, ml=True)
