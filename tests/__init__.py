"""hebbkit's test suite (a package, so tests can import ``tests.conftest`` and helpers)."""
