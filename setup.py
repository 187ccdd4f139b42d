"""Build step beyond pyproject.toml: copy the top-level folders bifrost reads at run time
(``migrations/``, ``deploy/crds/``, ``examples/``) and the install manifest ``dist/install.yaml``
(``bifrost demo --in-cluster`` applies it) into the wheel as ``bifrost/_shipped/`` (see
``bifrost/shipped.py``)."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("migrations", "deploy/crds", "examples", "dist/install.yaml")


class BuildWithShippedFiles(build_py):  # type: ignore[misc]
    def run(self) -> None:
        super().run()
        root = Path(__file__).resolve().parent
        target = Path(self.build_lib) / "bifrost" / "_shipped"
        for relative in SHIPPED:
            dest = target / relative
            if (root / relative).is_file():
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(root / relative, dest)
                continue
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(root / relative, dest,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithShippedFiles})
