"""Config files for training runs: YAML/JSON loading, safe overrides, merge, sweeps.

``import hyso.core.config`` loads only ``Config`` and ``ConfigError``; the other
names are imported on first use (PEP 562), and PyYAML only when a file is read
or written.
"""

from .config import Config, get_overrides, get_source
from .errors import ConfigError

__version__ = "0.1.0"

__all__ = [
    "Config",
    "ConfigError",
    "__version__",
    "apply_overrides",
    "expand_sweep",
    "format_override",
    "get_overrides",
    "get_source",
    "load_config",
    "load_config_with_overrides",
    "load_run_overrides",
    "merge_config",
    "parse_overrides",
    "parse_value",
    "resolve_interpolations",
    "save_config",
    "save_run_config",
    "sweep_label",
    "to_dict_env_unresolved",
]

_LAZY = {
    "apply_overrides": "overrides",
    "expand_sweep": "sweep",
    "format_override": "values",
    "load_config": "loader",
    "load_config_with_overrides": "loader",
    "load_run_overrides": "io",
    "merge_config": "merge",
    "parse_overrides": "overrides",
    "parse_value": "values",
    "resolve_interpolations": "interpolation",
    "save_config": "io",
    "save_run_config": "io",
    "sweep_label": "sweep",
    "to_dict_env_unresolved": "interpolation",
}

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .interpolation import resolve_interpolations, to_dict_env_unresolved
    from .io import load_run_overrides, save_config, save_run_config
    from .loader import load_config, load_config_with_overrides
    from .merge import merge_config
    from .overrides import apply_overrides, parse_overrides
    from .sweep import expand_sweep, sweep_label
    from .values import format_override, parse_value


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hyso.core.config' has no attribute '{name}'")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
