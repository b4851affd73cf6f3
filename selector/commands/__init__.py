"""CLI command modules beyond ``select``/``strategies``.

Every module in this package is imported (in name order) when the CLI loads, and registers its
commands on ``selector.cli.app`` with ``@app.command(...)``; adding a command is adding a file.
"""

import importlib
import pkgutil

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")
