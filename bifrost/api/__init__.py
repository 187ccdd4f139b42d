"""Pydantic models of the resources bifrost reads and writes."""
