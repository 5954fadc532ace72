"""`make image` (devstack image.py) and image/Containerfile build the same image: same package list,
entry point, user, environment and workspace members."""

from __future__ import annotations

import json
import re

from clinops_devstack import image

TEXT = image.CONTAINERFILE.read_text()


def _env() -> list[str]:
    block = re.search(r"^ENV (.+?)(?=^\S)", TEXT, flags=re.MULTILINE | re.DOTALL)
    assert block, "the Containerfile sets no ENV"
    return [item for item in re.split(r"\s*\\\n\s*|\s+(?=[A-Z_]+=)", block.group(1).strip()) if item]


def test_both_builds_install_the_one_package_list() -> None:
    assert "COPY image/packages.txt" in TEXT
    assert image.system_packages()  # the list is not empty
    assert image.system_packages("a # x\n# only a comment\n\nb\n") == ["a", "b"]


def test_both_builds_share_the_entry_point_user_and_environment() -> None:
    entry = re.search(r"^ENTRYPOINT (.+)$", TEXT, flags=re.MULTILINE)
    assert entry
    assert json.loads(entry.group(1)) == image.ENTRYPOINT
    assert f"image/entrypoint.sh {image.ENTRYPOINT_PATH}" in TEXT
    assert re.search(rf"^USER {image.UID}:{image.UID}$", TEXT, flags=re.MULTILINE)
    assert f"--uid {image.UID}" in TEXT
    assert sorted(_env()) == sorted(image.ENV)


def test_both_builds_install_the_same_workspace_members() -> None:
    assert image.MEMBERS["clinops"] == image.MEMBERS["clinops-trainer"] == image.MEMBERS_ALL
    for member in image.MEMBERS_ALL:
        assert f"--package {member}" in TEXT, f"{member} missing from the Containerfile's export"
        assert image.MEMBER_DIRS[member].removeprefix("services/") in TEXT


def test_only_the_trainer_image_installs_the_torch_stack() -> None:
    for name in ("torch", "nvidia-cublas", "cuda-toolkit"):
        assert image.TORCH_STACK.match(name)
    assert not image.TORCH_STACK.match("nvidia-ml-py")  # a base package (GPU metrics), not torch's
    assert "grep -v -E '^(torch|nvidia-[a-z0-9-]+|cuda-[a-z0-9-]+)=='" in TEXT
    assert "grep '^nvidia-ml-py=='" in TEXT


def test_both_builds_leave_out_the_same_locked_packages() -> None:
    for name in image.LEFT_OUT:
        assert f"grep -v '^{name}=='" in TEXT, f"the Containerfile installs {name}, which `make image` leaves out"


def test_both_builds_put_the_same_spark_jars_where_spark_looks() -> None:
    from clinops_common.spark import IMAGE_JARS_DIR
    from clinops_devstack import toolchain

    assert f"ARG HADOOP_VERSION={toolchain.HADOOP_VERSION}" in TEXT
    assert f"ARG AWS_SDK_BUNDLE_VERSION={toolchain.AWS_SDK_BUNDLE_VERSION}" in TEXT
    assert f"COPY --from=jars /jars {image.JARS_DIR}" in TEXT
    assert str(IMAGE_JARS_DIR) == image.JARS_DIR
