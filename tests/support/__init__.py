"""What the test suites share: servers and databases (``devcluster``, ``postgres``), the
in-process controller (``inprocess``), the admin fleet builder (``admin_fleet``), and the helpers
every folder uses instead of writing its own (one ``wait_for``, one ``ControllerProcess``, object
builders, ``FakeKube``)."""
