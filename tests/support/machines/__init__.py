"""Machines that exist only for the tests (the product catalog does not register them)."""
