"""The lifecycle benchmark of the returns platform (see bench/README.md)."""
