"""Read back what each backend stored, with the backend's own readers."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from train_helpers import TinyLM, token_data

from hyso.core.storage import CheckpointConfig, CheckpointManager, RunPaths
from hyso.core.train import Callback, Trainer


class Interrupt(Exception):
    """Raised by :class:`StopAt` to kill a run mid-way."""


class StopAt(Callback):
    """Raise at the start of optimizer step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_start(self, trainer) -> None:
        if trainer.global_step + 1 == self.step:
            raise Interrupt


def train(
    run_dir: Path,
    *,
    loggers=("csv",),
    callbacks=(),
    resume=None,
    epochs: int = 2,
    save_every: int | None = None,
    config: Any = None,
) -> Trainer:
    """A tiny LM run in ``run_dir``: 6 steps an epoch, a train row every 2 steps, a
    validation every 3 steps and at each epoch's end."""
    torch.manual_seed(0)
    model = TinyLM()
    opt = torch.optim.AdamW(model.parameters(), lr=0.02)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    paths = RunPaths.for_run_dir(run_dir).ensure_dirs()
    manager = CheckpointManager(
        CheckpointConfig.from_dir(directory=paths.checkpoints_dir, best_metric_name="val_loss")
    )
    trainer = Trainer(
        model,
        opt,
        sched,
        config=config,
        run_paths=paths,
        checkpoint_manager=manager,
        callbacks=list(callbacks),
        loggers=list(loggers),
        log_every=2,
        eval_every=3,
        save_every=save_every,
        scheduler_interval="step",
        progress_bar=False,
        seed=7,
        max_grad_norm=1.0,
    )
    train_loader = DataLoader(token_data(n=48, seed=1), batch_size=8, shuffle=True)
    val_loader = DataLoader(token_data(n=16, seed=2), batch_size=8)
    trainer.fit(train_loader, val_loader, epochs=epochs, resume=resume)
    return trainer


def csv_values(rows: list[dict[str, Any]]) -> dict[tuple[str, int], float]:
    """``{(tag, step): value}`` of metrics.csv rows, tags as the loggers name them."""
    out = {}
    for row in rows:
        for col, value in row.items():
            if col not in ("step", "split") and value is not None:
                out[(f"{row['split']}/{col}", row["step"])] = float(value)
    return out


# -- TensorBoard ---------------------------------------------------------------------------
def tensorboard_values(log_dir: Path) -> tuple[dict[tuple[str, int], list[float]], Any]:
    """``{(tag, step): [values]}`` of the scalars in ``log_dir`` and its hparams plugin
    data, read with TensorBoard's EventAccumulator."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2
    from tensorboard.util import tensor_util

    acc = EventAccumulator(str(log_dir), size_guidance={"tensors": 0, "scalars": 0})
    acc.Reload()
    out: dict[tuple[str, int], list[float]] = {}
    for tag in acc.Tags()["tensors"]:
        for event in acc.Tensors(tag):
            value = tensor_util.make_ndarray(event.tensor_proto)
            if value.dtype.kind == "f":
                out.setdefault((tag, event.step), []).append(float(value))
    hparams = {}
    for tag, content in acc.PluginTagToContent("hparams").items():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        if data.WhichOneof("data") == "session_start_info":
            for key, value in data.session_start_info.hparams.items():
                hparams[key] = getattr(value, value.WhichOneof("kind"))
        del tag
    return out, hparams


# -- W&B -------------------------------------------------------------------------------------
_BLOCK = 32 * 1024  # the LevelDB log format W&B's transaction log uses
_HEADER = 7  # ":W&B", a 2-byte magic and a version byte


def wandb_records(path: Path) -> list[Any]:
    """The records of an offline run's ``.wandb`` file, parsed with W&B's own protobuf
    schema (``wandb.proto.wandb_internal_pb2.Record``)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    pos, records, pending = _HEADER, [], b""
    while pos + 7 <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < 7:  # block trailer: zero padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            break
        pending += chunk
        if kind in (1, 4):  # FULL or LAST
            records.append(wandb_internal_pb2.Record.FromString(pending))
            pending = b""
    return records


def wandb_history(run_files: list[Path]) -> tuple[dict[tuple[str, int], list[float]], dict]:
    """``{(key, step): [values]}`` over the history records of ``run_files`` and the
    config the runs recorded."""
    history: dict[tuple[str, int], list[float]] = {}
    config: dict[str, Any] = {}
    for path in run_files:
        for record in wandb_records(path):
            kind = record.WhichOneof("record_type")
            if kind == "history":
                step = record.history.step.num
                for item in record.history.item:
                    key = item.key or "/".join(item.nested_key)
                    if not key.startswith("_"):
                        history.setdefault((key, step), []).append(json.loads(item.value_json))
            elif kind in ("config", "run"):
                updates = record.config.update if kind == "config" else record.run.config.update
                for item in updates:
                    config[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return history, config
