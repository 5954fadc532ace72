"""Offline JSON schemas for kubeconform: Kubernetes' own (from kubernetes-validate) and our CRDs'.

kubeconform validates manifests without a cluster. The built-in kinds' schemas come bundled with the
``kubernetes-validate`` wheel; a CRD's ``openAPIV3Schema`` is turned into a JSON schema here
(closed objects, so strict mode rejects unknown fields as the API server would prune them).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

SCHEMA_KUBERNETES_VERSION = "1.34.0"


def kubernetes_schema_dir() -> Path:
    """The folder of ``v<version>-local[-strict]`` schema folders shipped by kubernetes-validate."""
    import kubernetes_validate

    return Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"


_DEFS = "#/$defs/"


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and _DEFS in ref:
            found.add(ref.split(_DEFS, 1)[1])
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def _local_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: (_DEFS + v.split(_DEFS, 1)[1] if k == "$ref" and isinstance(v, str) and _DEFS in v else _local_refs(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_local_refs(v) for v in node]
    return node


def self_contained(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every definition it reaches copied into its own ``$defs``.

    kubernetes-validate's schemas point into a shared ``/api/_definitions.json``, which only its own
    resolver understands; kubeconform needs each kind's file to stand alone.
    """
    needed: set[str] = set()
    todo: set[str] = set()
    _refs(schema, todo)
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        more: set[str] = set()
        _refs(definitions[name], more)
        todo |= more - needed
    out: dict[str, Any] = _local_refs(schema)
    out["$defs"] = {name: _local_refs(definitions[name]) for name in sorted(needed)}
    return out


def build_kubernetes_schemas(out: Path) -> None:
    """Write kubeconform-ready schemas of the built-in kinds (plain and strict) into ``out``."""
    for flavour in ("local", "local-strict"):
        folder = f"v{SCHEMA_KUBERNETES_VERSION}-{flavour}"
        src = kubernetes_schema_dir() / folder
        definitions = json.loads((src / "_definitions.json").read_text())["$defs"]
        (out / folder).mkdir(parents=True, exist_ok=True)
        for path in sorted(src.glob("*.json")):
            if path.name in ("_definitions.json", "all.json"):
                continue
            schema = self_contained(json.loads(path.read_text()), definitions)
            (out / folder / path.name).write_text(json.dumps(schema, separators=(",", ":")))


def openapi_to_json_schema(node: Any) -> Any:
    """A CRD's structural OpenAPI v3 schema as a JSON schema.

    kubeconform reads schemas without ``$schema`` as draft 4, whose boolean ``exclusiveMinimum`` is
    OpenAPI's too, so bounds stay as they are.
    """
    if isinstance(node, list):
        return [openapi_to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: openapi_to_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if node.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    closed = "properties" in node and "additionalProperties" not in node
    if closed and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def write_crd_schemas(crds: Iterable[Path], out: Path) -> list[Path]:
    """Write ``<group>/<kind>_<version>.json`` for every served version of every CRD in ``crds``."""
    written: list[Path] = []
    for path in crds:
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                schema = openapi_to_json_schema(version["schema"]["openAPIV3Schema"])
                props = schema.setdefault("properties", {})
                # Every object may carry these, declared in its schema or not; ObjectMeta is the API server's.
                props.setdefault("apiVersion", {"type": "string"})
                props.setdefault("kind", {"type": "string"})
                props["metadata"] = {"type": "object"}
                target = out / spec["group"] / f"{spec['names']['kind'].lower()}_{version['name']}.json"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps(schema, indent=1))
                written.append(target)
    return written
