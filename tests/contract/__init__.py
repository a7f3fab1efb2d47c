"""The storage conformance suite: every backend must pass every test here (DESIGN §3)."""
