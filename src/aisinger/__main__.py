"""``python -m aisinger`` is the same as the ``aisinger`` command."""

from aisinger.cli import main

if __name__ == "__main__":
    main()
