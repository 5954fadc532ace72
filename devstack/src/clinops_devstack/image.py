"""``make image``: the clinops images built without a container engine, in cached layers.

1. **system**: Debian 12 from the machine's own apt sources (mmdebstrap, minbase) with the packages of
   ``image/packages.txt`` and the non-root user ``clinops`` (10001). Keyed by that list and the sources.
2. **python**: a virtualenv at ``/opt/clinops/venv`` with the third-party packages of the committed
   ``uv.lock`` (``uv export``), byte-compiled at their final paths. Keyed by ``uv.lock`` and the
   image's package set. ``clinops-trainer`` shares this layer with ``clinops`` and adds one of its own
   with what only the trainer needs (torch, full MLflow, XGBoost, matplotlib).
3. **spark-jars**: the jars Spark's ``s3a://`` needs (hadoop-aws and its AWS SDK bundle, the Maven
   Central pins of ``toolchain.SPARK_S3A``) in ``/opt/clinops/jars``, where the stages' Spark sessions
   and the SparkApplications' class paths find them; nothing is fetched at run time. Keyed by those pins.
4. **code**: the workspace's own packages (wheels built by ``uv build``, unpacked into the venv) and the
   entry point ``image/entrypoint.sh`` as ``/usr/local/bin/clinops``. Keyed by the sources' content,
   so a code-only change rebuilds this layer alone (seconds).

The images: ``clinops`` (every component except the trainer) and ``clinops-trainer`` (the same plus the
trainer). PyPI's only Linux torch wheel is the CUDA build (no CPU-only wheel is reachable from here);
its shared libraries link against the CUDA runtime wheels (``nvidia-*``), so those stay, but Triton
(the GPU kernel compiler, imported only by ``torch.compile``) is left out: about 1 GB less, and
training on CPU is unaffected (the local-cluster e2e trains the ``pytorch-mlp`` family in it).

Each image is written as an OCI image layout under ``.local/images/<name>`` (hard links to the cached
layers: ``skopeo copy oci:.local/images/clinops docker://<registry>/clinops:<tag>`` pushes it) and
imported into the real node's containerd when that node runs. ``image/Containerfile`` builds the same
image with Docker or podman from the same package list and entry point.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from clinops_devstack import node, oci, toolchain
from clinops_devstack.settings import REPO_ROOT, StackSettings

IMAGE_DIR = REPO_ROOT / "image"
PACKAGES_FILE = IMAGE_DIR / "packages.txt"
ENTRYPOINT_FILE = IMAGE_DIR / "entrypoint.sh"
CONTAINERFILE = IMAGE_DIR / "Containerfile"
SUITE = "bookworm"
APT_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
UID = 10001
VENV = "/opt/clinops/venv"
SITE_PACKAGES = f"{VENV}/lib/python3.11/site-packages"
JARS_DIR = "/opt/clinops/jars"  # clinops_common.spark.IMAGE_JARS_DIR; the operator's rendered class paths
ENTRYPOINT_PATH = "/usr/local/bin/clinops"
REGISTRY = "ghcr.io/clinops"
# What a container of either image starts with (the Containerfile says the same; a unit test checks).
ENTRYPOINT = ["/usr/bin/tini", "--", ENTRYPOINT_PATH]
ENV = [
    f"PATH={VENV}/bin:/usr/local/bin:/usr/bin:/bin",
    "PYTHONDONTWRITEBYTECODE=1",
    "PYTHONUNBUFFERED=1",
    "HOME=/tmp",
    "JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64",
    f"SPARK_HOME={SITE_PACKAGES}/pyspark",
]
# Workspace members: every image holds all of them (the trainer too: its gradient-boosted-trees
# family needs no torch).
MEMBERS_ALL: tuple[str, ...] = (
    "clinops-common",
    "clinops-operator",
    "clinops-ingest",
    "clinops-processor",
    "clinops-featurizer",
    "clinops-trainer",
    "clinops-scorer",
    "clinops-monitor",
)
MEMBERS: dict[str, tuple[str, ...]] = {"clinops": MEMBERS_ALL, "clinops-trainer": MEMBERS_ALL}
# Each image's Python layers, bottom first: `base` is every locked package but torch and the CUDA
# wheels it links against; `torch` is those (the trainer image's only addition).
PYTHON_LAYERS: dict[str, tuple[str, ...]] = {"clinops": ("base",), "clinops-trainer": ("base", "torch")}
TORCH_STACK = re.compile(r"^(torch|nvidia-(?!ml-py$)[a-z0-9-]+|cuda-[a-z0-9-]+)$")  # nvidia-ml-py: a base package
# Locked packages no image installs: Triton is torch's GPU compiler (torch.compile only), ~1 GB.
LEFT_OUT = frozenset({"triton"})
MEMBER_DIRS = {
    "clinops-common": "common",
    "clinops-operator": "operator",
    **{f"clinops-{n}": f"services/{n}" for n in ("ingest", "processor", "featurizer", "trainer", "scorer", "monitor")},
}
Say = Callable[[str], None]


class ImageBuildError(RuntimeError):
    """An image layer could not be built."""


def system_packages(text: str | None = None) -> list[str]:
    """The Debian packages of ``image/packages.txt`` (comments and blank lines dropped)."""
    text = PACKAGES_FILE.read_text() if text is None else text
    return [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]


def app_version() -> str:
    chart = yaml.safe_load((REPO_ROOT / "charts" / "clinops" / "Chart.yaml").read_text())
    return str(chart["appVersion"])


def image_ref(name: str, tag: str | None = None) -> str:
    return f"{REGISTRY}/{name}:{tag or app_version()}"


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def _run(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ImageBuildError(
            f"{' '.join(cmd[:6])} ... failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-4000:]}"
        )
    return proc.stdout


def _layers_dir(s: StackSettings) -> Path:
    return s.cache / "images" / "layers"


def _cached_layer(s: StackSettings, name: str, key: str, build: Callable[[Path], None], say: Say) -> oci.Layer:
    """The layer ``name-key``: from the cache, or built by ``build(rootfs)`` and tarred into it."""
    out = _layers_dir(s) / f"{name}-{key}.tar"
    if out.exists():
        say(f"{name} layer: cached ({out.stat().st_size / 1e6:.0f} MB)")
        return oci.Layer(out, oci.sha256_file(out), out.stat().st_size, f"{name} layer {key}")
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"clinops-{name}-", dir=out.parent) as tmp:
        root = Path(tmp) / "rootfs"
        root.mkdir(mode=0o755)
        root.chmod(0o755)  # the layer's "./" entry sets the image root's mode
        build(root)
        layer = oci.tar_layer(root, out, comment=f"{name} layer {key}")
        _rmtree_root(root)
    say(f"{name} layer: built in {time.monotonic() - t0:.0f}s ({layer.size / 1e6:.0f} MB)")
    return layer


def _rmtree_root(root: Path) -> None:
    subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=False)


# ---- layer 1: the system ----


def system_key() -> str:
    sources = APT_SOURCES.read_bytes() if APT_SOURCES.exists() else b""
    return _digest(PACKAGES_FILE.read_bytes(), sources, SUITE.encode())


def _build_system(root: Path) -> None:
    if not shutil.which("mmdebstrap"):
        raise toolchain.ToolError("mmdebstrap is not installed: run `make setup`")
    hooks = [
        # openjdk's postinst links its man page: the folder must exist although man pages are excluded.
        '--setup-hook=mkdir -p "$1/usr/share/man/man1"',
        f'--customize-hook=chroot "$1" useradd --uid {UID} --user-group --no-create-home '
        "--home-dir /tmp --shell /usr/sbin/nologin clinops",
        '--customize-hook=rm -rf "$1/var/cache/apt"/* "$1/var/lib/apt/lists"/* "$1/var/log"/*',
    ]
    excludes = [f"--dpkgopt=path-exclude=/usr/share/{d}/*" for d in ("doc", "man", "locale", "info")]
    _run(
        [
            "mmdebstrap",
            "--variant=minbase",
            "--quiet",
            f"--include={','.join(system_packages())}",
            *excludes,
            *hooks,
            SUITE,
            str(root),
            str(APT_SOURCES),
        ]
    )


# ---- layer 2: the Python environment ----


def _uv() -> str:
    return shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")


def _export() -> str:
    packages = [x for m in MEMBERS_ALL for x in ("--package", m)]
    return _run(
        [_uv(), "export", "--frozen", "--no-dev", "--no-emit-workspace", "--no-hashes", "--no-header", *packages],
        cwd=REPO_ROOT,
    )


def _name(requirement: str) -> str:
    return re.split(r"[=<>!~ ;\[]", requirement, maxsplit=1)[0].strip().lower()


def requirements(layer: str) -> str:
    """The pinned third-party requirements of one Python layer, from the committed uv.lock: ``base``
    every package but the torch stack, ``torch`` the torch stack; neither ``LEFT_OUT``."""
    lines = [line for line in _export().splitlines() if line.strip() and not line.lstrip().startswith("#")]
    in_torch = layer == "torch"
    kept = [line for line in lines if bool(TORCH_STACK.match(_name(line))) == in_torch and _name(line) not in LEFT_OUT]
    return "".join(f"{line}\n" for line in kept)


def python_key(layer: str) -> str:
    return _digest((REPO_ROOT / "uv.lock").read_bytes(), requirements(layer).encode(), b"/usr/bin/python3.11")


def _uv_env() -> dict[str, str]:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    for k in ("UV_FROZEN", "VIRTUAL_ENV", "UV_PYTHON"):
        env.pop(k, None)
    return env


def _compile(root: Path, folder: str) -> None:
    """Byte-compile at the files' final paths (the root fs is read-only: nothing compiles at run time)."""
    _run(
        [
            "/usr/bin/python3.11",
            "-m",
            "compileall",
            "-q",
            "-j",
            "2",
            "-s",
            str(root),
            "-p",
            "/",
            # modules written for a newer Python than the image's (torch ships py312_intrinsics.py)
            "-x",
            r"py3(1[2-9]|[2-9][0-9])_",
            str(root / folder.lstrip("/")),
        ]
    )


def _build_python(image: str) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        venv = root / VENV.lstrip("/")
        venv.parent.mkdir(parents=True)
        for p in (root / "opt", venv.parent):
            p.chmod(0o755)
        env = _uv_env()
        _run([_uv(), "venv", "--quiet", "--relocatable", "--python", "/usr/bin/python3.11", str(venv)], env=env)
        reqs = root.parent / "requirements.txt"
        reqs.write_text(requirements(image))
        _run(
            [
                _uv(),
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--link-mode=copy",
                "--python",
                str(venv / "bin" / "python"),
                "-r",
                str(reqs),
            ],
            env=env,
        )
        _compile(root, VENV)

    return build


# ---- layer 3: Spark's s3a jars ----


def spark_jars_key() -> str:
    return _digest(toolchain.SPARK_S3A.version.encode(), JARS_DIR.encode())


def _build_spark_jars(s: StackSettings) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        folder = root / JARS_DIR.lstrip("/")
        folder.mkdir(parents=True)
        for p in folder.parents:
            if p.is_relative_to(root) and p != root:
                p.chmod(0o755)
        for jar in toolchain.spark_s3a_jars(s.cache):
            shutil.copyfile(jar, folder / jar.name)
            (folder / jar.name).chmod(0o644)

    return build


# ---- layer 4: the code ----


def _source_files(image: str) -> list[Path]:
    files = [ENTRYPOINT_FILE]
    for member in MEMBERS[image]:
        folder = REPO_ROOT / MEMBER_DIRS[member]
        files.append(folder / "pyproject.toml")
        files += sorted(p for p in (folder / "src").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return files


def code_key(image: str) -> str:
    return _digest(*(str(p.relative_to(REPO_ROOT)).encode() + b"\0" + p.read_bytes() for p in _source_files(image)))


def _build_code(image: str) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        site = root / SITE_PACKAGES.lstrip("/")
        site.mkdir(parents=True)
        bin_dir = root / "usr" / "local" / "bin"
        bin_dir.mkdir(parents=True)
        for p in [*site.parents, *bin_dir.parents]:
            if p.is_relative_to(root) and p != root:
                p.chmod(0o755)
        dist = root.parent / "dist"
        for member in MEMBERS[image]:
            _run(
                [_uv(), "build", "--quiet", "--wheel", "--package", member, "--out-dir", str(dist)],
                cwd=REPO_ROOT,
                env=_uv_env(),
            )
        for wheel in sorted(dist.glob("*.whl")):
            with zipfile.ZipFile(wheel) as z:
                z.extractall(site)
        shutil.copyfile(ENTRYPOINT_FILE, bin_dir / "clinops")
        (bin_dir / "clinops").chmod(0o755)
        for p in site.rglob("*"):
            p.chmod(0o755 if p.is_dir() else 0o644)
        _compile(root, SITE_PACKAGES)

    return build


# ---- the images ----


@dataclass(frozen=True)
class Built:
    name: str
    ref: str
    layout: Path
    layers: list[oci.Layer]

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers)


def image_config(name: str) -> oci.ImageConfig:
    return oci.ImageConfig(
        entrypoint=ENTRYPOINT,
        cmd=["--help"],
        env=ENV,
        user=f"{UID}:{UID}",
        workdir="/tmp",  # noqa: S108 - an emptyDir in every pod (the root fs is read-only)
        labels={"org.opencontainers.image.source": "https://github.com/clinops/clinops", "io.clinops.image": name},
    )


def _layer_keys(name: str) -> list[tuple[str, str]]:
    return [
        ("system", system_key()),
        *((f"python-{layer}", python_key(layer)) for layer in PYTHON_LAYERS[name]),
        ("spark-jars", spark_jars_key()),
        (f"code-{name}", code_key(name)),
    ]


def is_built(s: StackSettings, name: str) -> bool:
    """Whether every layer of ``name`` at the current sources is in the cache."""
    return all((_layers_dir(s) / f"{layer}-{key}.tar").exists() for layer, key in _layer_keys(name))


def has_base_layers(s: StackSettings, name: str) -> bool:
    """Whether the system and Python layers of ``name`` are in the cache: the rest (the jars, copied
    from the tool cache, and the code) builds in seconds."""
    slow = [(layer, key) for layer, key in _layer_keys(name) if layer == "system" or layer.startswith("python-")]
    return all((_layers_dir(s) / f"{layer}-{key}.tar").exists() for layer, key in slow)


def build(s: StackSettings, name: str, say: Say = print, tag: str | None = None) -> Built:
    """Build (or take from the cache) every layer of image ``name`` and write its OCI layout."""
    if name not in MEMBERS:
        raise ImageBuildError(f"unknown image {name!r}: one of {sorted(MEMBERS)}")
    layers = [
        _cached_layer(s, "system", system_key(), _build_system, say),
        *(
            _cached_layer(s, f"python-{layer}", python_key(layer), _build_python(layer), say)
            for layer in PYTHON_LAYERS[name]
        ),
        _cached_layer(s, "spark-jars", spark_jars_key(), _build_spark_jars(s), say),
        _cached_layer(s, f"code-{name}", code_key(name), _build_code(name), say),
    ]
    ref = image_ref(name, tag)
    layout = s.home / "images" / name
    layout.parent.mkdir(parents=True, exist_ok=True)
    oci.write_layout(ref, image_config(name), layers, layout)
    return Built(name, ref, layout, layers)


def _ctr(s: StackSettings) -> list[str]:
    return [shutil.which("ctr") or "ctr", "--address", str(node.socket_path(s)), "--namespace", node.NAMESPACE]


def import_into_node(s: StackSettings, built: Built, *, discard_layers: bool = True) -> None:
    """Stream the image into the real node's containerd (``ctr images import -``), then delete its
    layer blobs from containerd's content store: the unpacked snapshots hold the files, and a pod
    needs only those and the image's manifest and config (what a pull does with containerd's
    ``discard_unpacked_layers``). That halves the disk an imported image takes (the trainer's: ~7 GB)."""
    tar = subprocess.Popen(oci.layout_tar_command(built.layout), stdout=subprocess.PIPE)
    assert tar.stdout is not None
    proc = subprocess.run(
        [*_ctr(s), "images", "import", "--snapshotter", "overlayfs", "-"],
        stdin=tar.stdout,
        capture_output=True,
        check=False,
    )
    tar.stdout.close()
    tar.wait()
    if proc.returncode != 0 or tar.returncode != 0:
        raise ImageBuildError(f"importing {built.ref} failed:\n{proc.stderr.decode(errors='replace')[-2000:]}")
    if not discard_layers:  # another image that shares them is imported next (they would be written again)
        return
    # A layer another image shares is deleted too: both images' snapshots already hold it.
    subprocess.run(
        [*_ctr(s), "content", "rm", *(layer.digest for layer in built.layers)], capture_output=True, check=False
    )
