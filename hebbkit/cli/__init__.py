"""The ``hebbkit`` command line (typer): parse flags, call one library function, print.

:mod:`hebbkit.cli.app` builds the application and registers every command; the command
modules never import it back.
"""

from hebbkit.cli.options import user_errors

# Plugins' own commands (hook register_commands) wrap their bodies in it.
__all__ = ["user_errors"]
