"""`python -m bench.chaos` (scripts/chaos)."""

from bench.chaos.cli import cli

cli()
