"""``python -m hebbkit``: the same as the ``hebbkit`` command."""

from hebbkit.cli.app import main


def run_as_module() -> None:
    """Run the CLI; then clear CPython's record of a Ctrl-C raised inside ``exec`` of a string.

    CPython 3.10-3.12 remembers, in a global flag, a KeyboardInterrupt that ended an ``exec``
    of source text (``dataclasses`` builds every ``__init__`` that way, so a Ctrl-C during an
    import is one) even after the program caught it; under ``python -m`` the interpreter then
    ignores the exit code the program chose (130) and kills itself with SIGINT. Every
    ``exec`` of source text resets the flag first, so one harmless exec at the end clears it.
    """
    try:
        main()
    finally:
        exec("pass")


if __name__ == "__main__":
    run_as_module()
