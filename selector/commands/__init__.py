"""CLI command modules beyond ``select``/``strategies``; each registers its commands on ``selector.cli.app``."""
