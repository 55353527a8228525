"""`python -m logalyse` runs the command line."""

from .cli import cli

cli(prog_name="logalyse")  # its name in messages and for shell completion
