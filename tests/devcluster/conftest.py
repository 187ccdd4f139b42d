"""Devcluster suite: one session-scoped server (see ``tests/support/devcluster.py``).

The fixtures are imported here so the suite runs on its own; once ``tests/conftest.py`` lists
``pytest_plugins = ["support.devcluster"]`` these imports are merely redundant.
"""

from __future__ import annotations

from support.devcluster import (  # noqa: F401
    api_client,
    devcluster,
    dynamic_client,
    kube_configuration,
    kubeconfig_path,
    namespace,
)
