"""Write OCI image archives without a container engine: layers are plain tars of directory trees.

``write_archive`` lays out ``oci-layout``, ``index.json`` and ``blobs/sha256/*`` (uncompressed tar
layers, an image config, a manifest) and tars the layout into one file that ``ctr images import``,
``podman load`` and ``skopeo copy oci-archive:`` all read. Layers are built by GNU tar with sorted
names, numeric owners and a fixed mtime, so the same tree gives the same digest.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
EPOCH = "1970-01-01T00:00:00Z"


class ImageError(RuntimeError):
    """An image could not be written or imported."""


@dataclass(frozen=True)
class Layer:
    """One uncompressed tar layer: its file, digest and size (for a tar layer, digest == diff id)."""

    path: Path
    digest: str
    size: int
    comment: str = ""


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an OCI image config that a runtime reads."""

    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    user: str = ""
    workdir: str = ""
    labels: dict[str, str] = field(default_factory=dict)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def tar_layer(root: Path, out: Path, comment: str = "") -> Layer:
    """Tar the tree under ``root`` (paths relative to it) into ``out``, reproducibly."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    cmd = [
        "tar",
        "--sort=name",
        "--numeric-owner",
        "--mtime=@0",
        "--format=posix",
        "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
        "-C",
        str(root),
        "-cf",
        str(partial),
        ".",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ImageError(f"tar of {root} failed: {proc.stderr[-2000:]}")
    partial.rename(out)
    return Layer(out, sha256_file(out), out.stat().st_size, comment)


def config_json(config: ImageConfig, layers: Sequence[Layer]) -> bytes:
    body = {
        "architecture": "amd64",
        "os": "linux",
        "created": EPOCH,
        "config": {
            k: v
            for k, v in {
                "Entrypoint": config.entrypoint,
                "Cmd": config.cmd,
                "Env": config.env,
                "User": config.user,
                "WorkingDir": config.workdir,
                "Labels": config.labels,
            }.items()
            if v
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.digest for layer in layers]},
        "history": [{"created": EPOCH, "created_by": layer.comment or "clinops image build"} for layer in layers],
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _blob(blobs: Path, data: bytes) -> tuple[str, int]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (blobs / digest.removeprefix("sha256:")).write_bytes(data)
    return digest, len(data)


def write_layout(ref: str, config: ImageConfig, layers: Sequence[Layer], layout: Path) -> str:
    """Write an OCI image layout of one image named ``ref`` into ``layout`` (blobs are hard links to the
    cached layers, so a layout costs no copy); return the manifest digest."""
    shutil.rmtree(layout, ignore_errors=True)
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for layer in layers:
        target = blobs / layer.digest.removeprefix("sha256:")
        if not target.exists():
            try:
                target.hardlink_to(layer.path)
            except OSError:
                shutil.copyfile(layer.path, target)
    config_digest, config_size = _blob(blobs, config_json(config, layers))
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": x.digest, "size": x.size} for x in layers],
    }
    manifest_digest, manifest_size = _blob(blobs, json.dumps(manifest, sort_keys=True).encode())
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": MANIFEST_MEDIA_TYPE,
                "digest": manifest_digest,
                "size": manifest_size,
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {
                    "io.containerd.image.name": ref,
                    "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[-1],
                },
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index, sort_keys=True))
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return manifest_digest


def layout_tar_command(layout: Path) -> list[str]:
    """GNU tar writing the layout as an OCI archive to stdout (``ctr images import -`` reads it)."""
    return ["tar", "--hard-dereference", "-C", str(layout), "-cf", "-", "oci-layout", "index.json", "blobs"]


def write_archive(ref: str, config: ImageConfig, layers: Sequence[Layer], out: Path) -> str:
    """Write an OCI archive (one tar file) of one image named ``ref`` to ``out``; return the manifest digest."""
    with tempfile.TemporaryDirectory(prefix="clinops-oci-", dir=out.parent) as tmp:
        layout = Path(tmp) / "layout"
        digest = write_layout(ref, config, layers, layout)
        partial = out.with_name(out.name + ".partial")
        with partial.open("wb") as f:
            proc = subprocess.run(layout_tar_command(layout), stdout=f, stderr=subprocess.PIPE, check=False)
        if proc.returncode != 0:
            raise ImageError(f"writing {out} failed: {proc.stderr.decode(errors='replace')[-2000:]}")
        partial.rename(out)
    return digest
