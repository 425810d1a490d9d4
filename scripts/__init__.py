"""Hand tools run by people, not by CI (they need what CI cannot have)."""
