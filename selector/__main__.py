"""``python -m selector`` runs the CLI."""

from selector.cli import main

main()
