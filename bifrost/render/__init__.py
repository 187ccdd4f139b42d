"""Value merging, sandboxed templates, readiness and status expressions."""
