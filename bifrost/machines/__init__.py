"""Declarative machine specs: states, ordered steps, triggers. Pure data, no I/O."""
