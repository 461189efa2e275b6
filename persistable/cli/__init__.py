"""The ``persistable`` command (also ``python -m persistable``): look after the artifacts of a store.

The command line is the only place in the package that configures logging.

Adding a subcommand
-------------------
One module per subcommand, registered in one place:

1. Write ``persistable/cli/_<name>.py`` defining ``command``, a :func:`click.command`
   (use the helpers of :mod:`persistable.cli._common`: ``store_argument``,
   ``storage_options_option``, ``json_option``, ``yes_option``, ``open_store``,
   ``emit_json``). Import heavy modules inside the function, not at the top:
   ``persistable --help`` imports every subcommand module and must stay fast
   (``tests/test_cli.py`` checks it).
2. Add ``"<name>": "persistable.cli._<name>"`` to :data:`persistable.cli._main.COMMANDS`.
3. Test it through a real subprocess (see ``tests/test_cli.py``).

A command line that already has its own parser (argparse) is registered the same way,
with a module holding one line::

    command = delegate_command("memo", "persistable.steps._memo_cli:main", "Memoize a command.")

(:func:`persistable.cli._common.delegate_command` passes every argument through and
exits with the function's return value.)

Errors raised as :class:`persistable.exceptions.PersistableError` are printed as one
line (``persistable: error: ...``) with the exit codes of :mod:`persistable.cli._main`.
"""

from persistable.cli._main import COMMANDS, EXIT_CODES, main

__all__ = ["COMMANDS", "EXIT_CODES", "main"]
