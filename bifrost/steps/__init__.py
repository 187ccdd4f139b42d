"""Idempotent step implementations (children, certificates, status, teardown)."""
