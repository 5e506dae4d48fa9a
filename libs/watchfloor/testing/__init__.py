"""Test utilities shipped with the library, so services' own integration tests can use them."""
