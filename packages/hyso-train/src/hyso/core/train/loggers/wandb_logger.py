"""Weights & Biases: one W&B run per hyso run, its files under the run folder.

``project`` defaults to ``WANDB_PROJECT``, else ``hyso``; ``entity`` and the mode
(``WANDB_MODE=offline`` for no network) come from W&B's own settings. The config is
the W&B config, the hyso run id the W&B run name. The W&B run id is recorded in the
manifest, and a resumed run reopens that run (``id=``, ``resume="allow"``).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hyso.core.train.loggers.base import TrackingLogger, require_module

if TYPE_CHECKING:
    from hyso.core.train.trainer import Trainer

__all__ = ["WandbLogger"]


class WandbLogger(TrackingLogger):
    """Mirror metrics.csv into a W&B run (see the module docstring).

    ``dir``: where W&B keeps its files (default: ``WANDB_DIR``, else the run folder).
    Needs the ``wandb`` package (``pip install "hyso-train[wandb]"``).
    """

    name = "wandb"

    def __init__(
        self,
        project: str | None = None,
        entity: str | None = None,
        dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        require_module("wandb", self.name, "wandb")
        self.project = project
        self.entity = entity
        self.dir = dir
        self._run: Any = None
        self._config: dict[str, Any] = {}

    def on_train_start(self, trainer: Trainer) -> None:
        from hyso.core.train.loggers.base import run_config_tree

        # W&B takes the config with the run, so it is built before the run opens.
        self._config = run_config_tree(trainer) if trainer.is_rank_zero else {}
        super().on_train_start(trainer)

    def _open(
        self, trainer: Trainer, run_id: str | None, resume: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        import wandb

        # Read here, not by W&B: it keeps the settings of its first run in a process.
        folder = self.dir or os.environ.get("WANDB_DIR") or None
        if folder is None and trainer.run_paths is not None:
            folder = trainer.run_paths.run_dir
        wandb_id = (resume or {}).get("id") or secrets.token_hex(6)  # W&B ids: [a-z0-9]
        run = wandb.init(
            project=self.project or (resume or {}).get("project") or _env("WANDB_PROJECT", "hyso"),
            entity=self.entity or (resume or {}).get("entity"),
            id=wandb_id,
            resume="allow",
            name=run_id,
            dir=os.fspath(folder) if folder is not None else None,
            config={**self._config, "hyso_run_id": run_id},
            reinit="create_new",
        )
        self._run = run
        return {
            "id": run.id,
            "path": run.path,
            "project": run.project,
            "entity": run.entity or None,
            "mode": "offline" if run.offline else "online",
            "dir": str(run.settings.sync_dir),
        }

    def _log_config(self, config: Mapping[str, Any], run_id: str | None, resumed: bool) -> None:
        """Already sent with the run (``wandb.init(config=...)``)."""

    def _log_row(self, step: int, values: Mapping[str, float]) -> None:
        self._run.log(dict(values), step=step)

    def _close(self, status: str) -> None:
        run, self._run = self._run, None
        if run is not None:
            run.finish(exit_code=0 if status == "finished" else 1)


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default
