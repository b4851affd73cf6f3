"""``python -m selector`` runs the CLI."""

from selector.cli.app import main

main()
