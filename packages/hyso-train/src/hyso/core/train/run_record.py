"""The one writer of a run's ``manifest.json``: started, finished, results added,
and where the run's loggers (TensorBoard, MLflow, W&B) send its rows.

A :class:`RunRecord` holds the manifest in memory and writes it (atomically, through
hyso-storage) when the run starts, when it ends and when a caller adds results after
training; nothing else in hyso-train writes the manifest.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hyso.core.storage import Manifest, load_manifest, save_manifest
from hyso.core.storage.permissions import apply_file_mode
from hyso.core.train.redact import redact_env
from hyso.core.train.settings import as_plain_dict

if TYPE_CHECKING:
    from hyso.core.storage import RunPaths

__all__ = ["RunRecord"]


class RunRecord:
    """The manifest of the run in ``run_paths``, owned by one object.

    ``describe`` sets what a new manifest records (model, training, data and extra
    keys); without it the manifest records the config's sections. A manifest already on
    disk (a resumed run, or one the caller wrote) is updated, never replaced. Values the
    config reads from the environment (``${env:NAME}``) are recorded unresolved, in
    config.yaml and in the manifest (see :mod:`hyso.core.train.redact`).
    """

    def __init__(self, run_paths: RunPaths) -> None:
        self.run_paths = run_paths
        self.manifest: Manifest | None = None
        self._description: dict[str, Any] | None = None
        #: True for a reopened run: its config.yaml and overrides.yaml stay as written.
        self.keep_config = False

    def describe(
        self,
        *,
        model: Mapping[str, Any] | None = None,
        training: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> None:
        """What a new manifest records; written by :meth:`start`."""
        self._description = {"model": model, "training": training, "data": data, **extra}

    def start(self, config: Any, trainer_info: Mapping[str, Any], tokenizer: Any = None) -> str:
        """Save the config (and tokenizer) and write the manifest as running.

        Returns what was written, for the log.
        """
        paths = self.run_paths
        paths.run_dir.mkdir(parents=True, exist_ok=True)
        written = ["manifest"]
        if config is not None and not self.keep_config:
            from hyso.core.config import Config, get_overrides, get_source, save_run_config

            # A loaded Config is saved by hyso-config, which writes ${env:...} unresolved.
            tree = config if isinstance(config, Config) else as_plain_dict(config)
            saved = save_run_config(
                tree, paths.config_path, overrides=get_overrides(config), source=get_source(config)
            )
            apply_file_mode(*saved)
            written.insert(0, "config")
        if tokenizer is not None and hasattr(tokenizer, "save"):
            paths.tokenizer_path.parent.mkdir(parents=True, exist_ok=True)
            tokenizer.save(os.fspath(paths.tokenizer_path))
            apply_file_mode(paths.tokenizer_path)
            written.insert(0, "tokenizer")
        manifest = self._current(config, trainer_info)
        manifest.mark("running")
        info = dict(trainer_info)
        if isinstance(info.get("settings"), Mapping):
            info["settings"] = redact_env({"training": dict(info["settings"])}, config)["training"]
        manifest.extra["trainer"] = info
        self._write(manifest)
        if len(written) == 1:
            return written[0]
        return f"{', '.join(written[:-1])} and {written[-1]}"

    def finish(self, status: str, results: Mapping[str, Any]) -> None:
        """Mark the manifest ``finished`` or ``failed`` with the final metrics."""
        manifest = self.manifest
        if manifest is None:
            if not self.run_paths.manifest_path.exists():
                return
            manifest = load_manifest(self.run_paths.manifest_path)
        manifest.mark(status, results)
        self._write(manifest)

    def add_results(
        self, results: Mapping[str, Any], *, if_missing: Mapping[str, Any] | None = None
    ) -> None:
        """Add ``results`` (and ``if_missing`` where absent) to the finished manifest."""
        manifest = self.manifest or load_manifest(self.run_paths.manifest_path)
        manifest.results.update(results)
        for key, value in (if_missing or {}).items():
            manifest.results.setdefault(key, value)
        self._write(manifest)

    def logger_destination(self, name: str) -> dict[str, Any] | None:
        """Where logger ``name`` sent this run's rows before (a resumed run), or None."""
        manifest = self.manifest
        if manifest is None and self.run_paths.manifest_path.exists():
            manifest = load_manifest(self.run_paths.manifest_path)
        loggers = (manifest.extra.get("loggers") if manifest is not None else None) or {}
        found = loggers.get(name)
        return dict(found) if isinstance(found, Mapping) else None

    def record_logger(self, name: str, destination: Mapping[str, Any]) -> None:
        """Record in ``extra.loggers.<name>`` where logger ``name`` sends the rows (its
        TensorBoard log dir, MLflow run id, W&B run path)."""
        manifest = self.manifest or load_manifest(self.run_paths.manifest_path)
        loggers = manifest.extra.get("loggers")
        if not isinstance(loggers, dict):
            loggers = manifest.extra["loggers"] = {}
        loggers[name] = dict(destination)
        self._write(manifest)

    def _current(self, config: Any, trainer_info: Mapping[str, Any]) -> Manifest:
        if self.manifest is not None:
            return self.manifest
        path = self.run_paths.manifest_path
        if path.exists():
            return load_manifest(path)
        if self._description is not None:
            return Manifest.new(run_id=self.run_paths.run_id, **self._description)
        cfg = redact_env(as_plain_dict(config), config)
        return Manifest.new(
            run_id=self.run_paths.run_id,
            model=cfg.get("model") or {},
            training=cfg.get("training") or dict(trainer_info.get("settings") or {}),
            data=cfg.get("data") or {},
        )

    def _write(self, manifest: Manifest) -> None:
        save_manifest(self.run_paths.manifest_path, manifest)
        self.manifest = manifest
