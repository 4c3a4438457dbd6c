"""One trading scenario per client family, run in a subprocess against a gateway (see test_client_compat)."""
