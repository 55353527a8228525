"""`python -m logalyse` runs the command line."""

from .cli import cli

cli()
