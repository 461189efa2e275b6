"""``python -m persistable``: the same as the ``persistable`` command."""

from persistable.cli import main

if __name__ == "__main__":
    main()
