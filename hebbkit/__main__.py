"""``python -m hebbkit``: the same as the ``hebbkit`` command."""

from hebbkit.cli.app import main

if __name__ == "__main__":
    main()
