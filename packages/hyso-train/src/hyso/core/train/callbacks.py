"""Callback base class and an ordered list of callbacks that skips no-op hooks cheaply."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hyso.core.train.trainer import Trainer

__all__ = ["HOOKS", "Callback", "CallbackList"]

HOOKS = (
    "on_train_start",
    "on_train_end",
    "on_epoch_start",
    "on_epoch_end",
    "on_step_start",
    "on_step_end",
    "on_validation_end",
    "on_checkpoint",
)


class Callback:
    """A hook set run at fixed moments of training; every hook does nothing by default.

    ``metrics`` arguments are plain dicts of floats. ``on_step_end`` receives the logged
    metrics (``loss``, ``lr``, ``tokens_per_s`` ...) on logging steps and an empty mapping
    on the other steps, so checking ``if metrics:`` costs nothing.

    A callback whose behaviour depends on the past (early stopping's patience, a
    metrics file's row count) returns that state from ``state_dict`` so checkpoints
    carry it and a resumed run continues exactly.
    """

    def on_train_start(self, trainer: Trainer) -> None:
        """Before the first step of ``fit`` (after a resume has been restored)."""

    def on_train_end(self, trainer: Trainer) -> None:
        """After ``fit``, also when it fails (``trainer.status`` says which)."""

    def on_epoch_start(self, trainer: Trainer) -> None:
        """Before the first batch of an epoch."""

    def on_epoch_end(self, trainer: Trainer, metrics: Mapping[str, Any]) -> None:
        """After an epoch's training, validation and scheduler step; ``metrics`` is its record."""

    def on_step_start(self, trainer: Trainer) -> None:
        """Before the first micro-batch of an optimizer step."""

    def on_step_end(self, trainer: Trainer, metrics: Mapping[str, Any]) -> None:
        """After an optimizer step (and any validation due at that step)."""

    def on_validation_end(self, trainer: Trainer, metrics: Mapping[str, Any]) -> None:
        """After a validation pass; ``metrics`` has ``val_loss``, ``val_ppl``, ``val_tokens``."""

    def on_checkpoint(self, trainer: Trainer, path: Any) -> None:
        """After a checkpoint was written to ``path``."""

    def state_dict(self) -> dict[str, Any]:
        """State to carry in checkpoints (JSON-able); empty by default."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""

    @property
    def state_key(self) -> str:
        """Key of this callback's state inside a checkpoint."""
        return type(self).__name__


class CallbackList(Callback):
    """Runs several callbacks in order. Each hook calls only the callbacks overriding it."""

    def __init__(self, callbacks: Iterable[Callback] = ()) -> None:
        self.callbacks: list[Callback] = []
        self._by_hook: dict[str, list[Any]] = {}
        for cb in callbacks:
            self.append(cb)
        self._rebuild()

    def append(self, callback: Callback) -> None:
        """Add ``callback`` at the end."""
        if not isinstance(callback, Callback):
            raise TypeError(
                f"callbacks must be hyso.core.train.Callback instances, "
                f"got {type(callback).__name__}"
            )
        self.callbacks.append(callback)
        self._rebuild()

    def _rebuild(self) -> None:
        # Bound methods of the callbacks that override each hook, computed once; each
        # list is updated in place, so one handed out by functions() stays current.
        for hook in HOOKS:
            fns = self._by_hook.setdefault(hook, [])
            fns[:] = [
                getattr(cb, hook)
                for cb in self.callbacks
                if getattr(type(cb), hook) is not getattr(Callback, hook)
            ]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.callbacks)

    def __len__(self) -> int:
        return len(self.callbacks)

    def on_train_start(self, trainer: Trainer) -> None:
        for fn in self._by_hook["on_train_start"]:
            fn(trainer)

    def on_train_end(self, trainer: Trainer) -> None:
        for fn in self._by_hook["on_train_end"]:
            fn(trainer)

    def on_epoch_start(self, trainer: Trainer) -> None:
        for fn in self._by_hook["on_epoch_start"]:
            fn(trainer)

    def on_epoch_end(self, trainer: Trainer, metrics: Mapping[str, Any]) -> None:
        for fn in self._by_hook["on_epoch_end"]:
            fn(trainer, metrics)

    def on_step_start(self, trainer: Trainer) -> None:
        for fn in self._by_hook["on_step_start"]:
            fn(trainer)

    def on_step_end(self, trainer: Trainer, metrics: Mapping[str, Any]) -> None:
        for fn in self._by_hook["on_step_end"]:
            fn(trainer, metrics)

    def on_validation_end(self, trainer: Trainer, metrics: Mapping[str, Any]) -> None:
        for fn in self._by_hook["on_validation_end"]:
            fn(trainer, metrics)

    def on_checkpoint(self, trainer: Trainer, path: Any) -> None:
        for fn in self._by_hook["on_checkpoint"]:
            fn(trainer, path)

    def has_hook(self, hook: str) -> bool:
        """Whether any callback overrides ``hook``."""
        return bool(self._by_hook[hook])

    def functions(self, hook: str) -> list[Any]:
        """The bound ``hook`` methods of the callbacks overriding it, in order: a list
        kept current as callbacks are appended, for a caller that runs a hook every step
        (``for fn in fns: fn(trainer, ...)`` costs less than a call of the hook here)."""
        return self._by_hook[hook]

    def state_dict(self) -> dict[str, Any]:
        """States of all stateful callbacks, keyed by ``state_key`` (made unique)."""
        out: dict[str, Any] = {}
        for key, cb in self._keyed():
            state = cb.state_dict()
            if state:
                out[key] = state
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for key, cb in self._keyed():
            if key in state:
                cb.load_state_dict(state[key])

    def _keyed(self) -> list[tuple[str, Callback]]:
        seen: dict[str, int] = {}
        keyed = []
        for cb in self.callbacks:
            base = cb.state_key
            n = seen.get(base, 0)
            seen[base] = n + 1
            keyed.append((base if n == 0 else f"{base}#{n}", cb))
        return keyed
