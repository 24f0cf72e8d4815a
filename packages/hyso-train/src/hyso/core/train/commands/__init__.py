"""The ``hyso`` sub-commands, one module each: train, generate, runs, sweep, plot.

Each module has ``register(subparsers)`` (adds its parser) and ``run(args) -> int``.
"""

__all__: list[str] = []
