"""Certificate rules in one home: ``rules`` (managed listeners, names, inventory ids,
fingerprints, issuance defaults) and ``renewal`` (when a certificate is renewed: the policy,
maintenance windows, jitter). Pure decisions; the clock and the objects are passed in."""
