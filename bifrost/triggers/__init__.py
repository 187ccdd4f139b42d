"""When and how each Gateway operation starts: one module per machine.

- :mod:`bifrost.triggers.provision` — a Gateway's inputs changed (its *input hash*);
- :mod:`bifrost.triggers.teardown` — a Gateway is being deleted and still has children or
  operations;
- :mod:`bifrost.triggers.rotation` — a certificate is due for renewal, a listener's hostnames or
  certificate Secret changed, or an operator asked.

Each module has pure decision functions (what they need is passed in, the time included: no
clock is read) and ONE function that starts its operation through
:func:`bifrost.engine.start_operation`. The controller (observer and renewal scheduler),
``bifrost-admin`` and the demo all start operations through these functions, so the
preconditions of each are written once. This package sits between its callers
(``bifrost.controller``, ``bifrost.admin``, ``bifrost.cli``) and the steps, engine and machines
it starts; it reads no Kubernetes cache itself — what it decides on is handed to it.
"""
