"""Which local command runs a container: its ``image`` matched against the
:class:`~devcluster.localpods.ImageCommand` patterns, and the ``--local-image`` flag's syntax."""

from __future__ import annotations

import fnmatch
import shlex
from collections.abc import Sequence
from typing import Any

from devcluster.localpods import ImageCommand

__all__ = ["image_for", "local_images", "parse_image_mapping"]

JSON = dict[str, Any]


def image_for(image: str, images: Sequence[ImageCommand]) -> ImageCommand | None:
    """The first :class:`ImageCommand` whose pattern matches ``image`` as written, else None."""
    for ic in images:
        if fnmatch.fnmatchcase(image, ic.pattern):
            return ic
    return None


def local_images(pod: JSON, images: Sequence[ImageCommand]) -> dict[str, ImageCommand] | None:
    """Container name -> its image's command when *every* container (init containers too) of
    ``pod`` has a mapped image; None otherwise (the pod stays simulated)."""
    spec = pod.get("spec") or {}
    containers = list(spec.get("initContainers") or []) + list(spec.get("containers") or [])
    if not containers or not images:
        return None
    out: dict[str, ImageCommand] = {}
    for c in containers:
        ic = image_for(str(c.get("image") or ""), images)
        if ic is None:
            return None
        out[str(c.get("name"))] = ic
    return out


def parse_image_mapping(text: str) -> ImageCommand:
    """``PATTERN=COMMAND`` (``bifrost:*=/venv/bin/bifrost``; COMMAND is split like a shell
    line and becomes the image's ENTRYPOINT) as an :class:`ImageCommand`."""
    pattern, eq, command = text.partition("=")
    argv = shlex.split(command)
    if not eq or not pattern.strip() or not argv:
        raise ValueError(
            f"--local-image {text!r}: expected PATTERN=COMMAND, e.g. 'bifrost:*=/usr/bin/bifrost'"
        )
    return ImageCommand(pattern.strip(), entrypoint=tuple(argv))
