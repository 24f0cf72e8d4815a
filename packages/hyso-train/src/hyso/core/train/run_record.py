"""The run folder's story: resolved config and manifest at the start, results at the end."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from hyso.core.train.settings import as_plain_dict

__all__ = ["finish_run", "start_run"]


def start_run(
    run_paths: Any,
    config: Any,
    settings_dict: Mapping[str, Any],
    trainer_info: Mapping[str, Any],
    logger: logging.Logger,
) -> None:
    """Save the resolved config (when given) and write or update the manifest as running."""
    from hyso.core.storage import Manifest, load_manifest, save_manifest

    run_paths.run_dir.mkdir(parents=True, exist_ok=True)
    if config is not None:
        _save_config(config, run_paths.config_path)
    path = run_paths.manifest_path
    if path.exists():
        manifest = load_manifest(path)
        manifest.mark("running")
    else:
        cfg = as_plain_dict(config)
        manifest = Manifest.new(
            run_id=run_paths.run_id,
            model=cfg.get("model") or {},
            training=cfg.get("training") or dict(settings_dict),
            data=cfg.get("data") or {},
        )
    manifest.extra["trainer"] = dict(trainer_info)
    save_manifest(path, manifest)
    written = "config and manifest" if config is not None else "manifest"
    logger.info(f"run folder {run_paths.run_dir}: {written} written")


def finish_run(run_paths: Any, status: str, results: Mapping[str, Any]) -> None:
    """Mark the manifest ``finished`` or ``failed`` and add the final metrics."""
    from hyso.core.storage import load_manifest, save_manifest

    path = run_paths.manifest_path
    if not path.exists():
        return
    manifest = load_manifest(path)
    manifest.mark(status, results)
    save_manifest(path, manifest)


def _save_config(config: Any, path: Any) -> None:
    from hyso.core.config import save_run_config

    save_run_config(config, path)
