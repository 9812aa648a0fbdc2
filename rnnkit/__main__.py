"""``python -m rnnkit train|eval|predict ...``: the same as the ``rnnkit`` command."""

from rnnkit.commands import main

main()
