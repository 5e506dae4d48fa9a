"""Test utilities shipped with the library, so users' own integration tests can use them too."""
