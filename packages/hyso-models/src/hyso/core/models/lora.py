"""Low-rank adapters (LoRA, Hu et al. 2021) on the attention and MLP projections.

:func:`apply_lora` replaces the targeted projections of a model by :class:`LoRALinear`
and freezes everything else: only the adapters train. A projection computes
``linear(x, W, b) + scaling * B(A(dropout(x)))`` with ``A (r, in)`` initialised like
``nn.Linear`` (Kaiming uniform), ``B (out, r)`` zero (so training starts from the base
model) and ``scaling = alpha / r``.

hyso fuses some projections (q/k/v in one ``qkv`` linear, gate/up in one ``gate_up``):
each targeted slice of a fused projection gets its own ``A`` and ``B``, exactly as if the
projections were separate (``q`` and ``v`` targeted: two adapters on ``qkv``, none on the
``k`` rows). Target names, for every attention and MLP layer of the model:

=========  ====================================================
``q``      query projection (the ``q`` rows of ``attn.qkv``, ``cross.q``)
``k``      key projection
``v``      value projection
``out``    attention output projection (``attn.out``)
``gate``   SwiGLU/GeGLU gate (the first half of ``mlp.gate_up``)
``up``     SwiGLU/GeGLU up projection (the second half)
``down``   MLP output projection (``mlp.down``)
``fc``     GELU/ReLU MLP input projection (``mlp.fc``)
=========  ====================================================

:func:`merge_lora` folds the adapters into the weights (for inference);
:func:`unmerge_lora` restores the weights bit for bit (the original is kept while
merged). The base weights keep their state-dict names; the adapters add
``<projection>.lora_A.<target>`` and ``<projection>.lora_B.<target>``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .layers.attention import CrossAttention, SelfAttention
from .layers.mlp import GeluMLP, SwiGLU

__all__ = [
    "LORA_TARGETS",
    "LoRALinear",
    "LoRASettings",
    "apply_lora",
    "format_trainable_share",
    "has_lora",
    "is_lora_key",
    "load_lora_state_dict",
    "lora_modules",
    "lora_settings_of",
    "lora_state_dict",
    "merge_lora",
    "projections",
    "trainable_share",
    "unmerge_lora",
]

LORA_TARGETS = ("q", "k", "v", "out", "gate", "up", "down", "fc")
"""Every target name, in the order the adapters are listed."""

_LORA_KEY = re.compile(r"(^|\.)lora_[AB]\.[a-z]+$")


@dataclass(frozen=True)
class LoRASettings:
    """What :func:`apply_lora` adds (the ``lora`` keys of a config)."""

    r: int = 8
    """Rank of each adapter (>= 1)."""
    alpha: float = 16.0
    """Scale numerator: the adapter's output is multiplied by ``alpha / r`` (> 0)."""
    dropout: float = 0.0
    """Dropout on the input of the adapter path, in [0, 1)."""
    targets: tuple[str, ...] = ("q", "v")
    """Projections that get adapters, among ``q k v out gate up down fc``."""

    def __post_init__(self) -> None:
        r, alpha, p = self.r, self.alpha, self.dropout
        if isinstance(r, bool) or not isinstance(r, int) or r < 1:
            raise ValueError(f"lora.r must be an integer >= 1, got {r!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
            raise ValueError(f"lora.alpha must be a positive number, got {alpha!r}")
        if not 0 < alpha < math.inf:
            raise ValueError(f"lora.alpha must be a positive number, got {alpha!r}")
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ValueError(f"lora.dropout must be a number in [0, 1), got {p!r}")
        targets = self.targets
        if isinstance(targets, str) or not isinstance(targets, (list, tuple)) or not targets:
            raise ValueError(
                f"lora.targets must be a non-empty list among {', '.join(LORA_TARGETS)}, "
                f"got {targets!r}"
            )
        for name in targets:
            if name not in LORA_TARGETS:
                raise ValueError(
                    f"lora.targets: unknown target {name!r}; valid: {', '.join(LORA_TARGETS)}"
                )
        if len(set(targets)) != len(targets):
            raise ValueError(f"lora.targets lists a target twice: {list(targets)}")
        ordered = tuple(t for t in LORA_TARGETS if t in targets)
        object.__setattr__(self, "targets", ordered)
        object.__setattr__(self, "alpha", float(alpha))
        object.__setattr__(self, "dropout", float(p))

    @property
    def scaling(self) -> float:
        """``alpha / r``."""
        return self.alpha / self.r

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], where: str = "lora") -> LoRASettings:
        """Settings from a mapping; an unknown key is a ``ValueError`` naming it
        (``where`` prefixes every key named in an error)."""
        if not isinstance(values, Mapping):
            raise ValueError(f"{where} must be a mapping, got {values!r}")
        known = [f.name for f in fields(cls)]
        for key in values:
            if key not in known:
                raise ValueError(f"{where}: unknown key {key!r}; known: {', '.join(known)}")
        data = dict(values)
        if isinstance(data.get("targets"), list):
            data["targets"] = tuple(data["targets"])
        try:
            return cls(**data)
        except ValueError as exc:
            raise ValueError(str(exc).replace("lora", where, 1)) from None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (``targets`` as a list)."""
        out = asdict(self)
        out["targets"] = list(self.targets)
        return out


class LoRALinear(nn.Module):
    """``base`` (an ``nn.Linear``, frozen by :func:`apply_lora`) plus low-rank adapters.

    ``parts`` splits the output rows into named slices ``(name, size)`` (one slice for
    an unfused projection); the slices named in ``targets`` get an ``A (r, in)`` and a
    ``B (size, r)``. The base ``weight`` and ``bias`` are the same parameters as
    ``base``'s, under the same names.
    """

    def __init__(
        self,
        base: nn.Linear,
        parts: Sequence[tuple[str, int]],
        targets: Iterable[str],
        settings: LoRASettings,
    ) -> None:
        super().__init__()
        if sum(size for _, size in parts) != base.out_features:
            raise ValueError(f"parts {list(parts)} do not add up to {base.out_features} rows")
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight = base.weight
        self.bias = base.bias
        self.parts = tuple(parts)
        self.r, self.alpha, self.scaling = settings.r, settings.alpha, settings.scaling
        wanted = set(targets)
        kw = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_A = nn.ParameterDict()
        self.lora_B = nn.ParameterDict()
        for name, size in self.parts:
            if name in wanted:
                a = torch.empty(settings.r, self.in_features, **kw)
                nn.init.kaiming_uniform_(a, a=math.sqrt(5))  # nn.Linear's (and PEFT's) init
                self.lora_A[name] = nn.Parameter(a)
                self.lora_B[name] = nn.Parameter(torch.zeros(size, settings.r, **kw))
        self.dropout: nn.Module = (
            nn.Dropout(settings.dropout) if settings.dropout > 0 else nn.Identity()
        )
        self.merged = False
        self._original: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., in) -> (..., out)``."""
        out = F.linear(x, self.weight, self.bias)
        if self.merged:
            return out
        # Every adapter in two matmuls: the A's stacked, then the B's placed block-diagonally
        # at their rows (zero rows for untargeted slices), so no per-slice output is kept.
        stack = list(self.lora_A.values())
        a = torch.cat(stack) if len(stack) > 1 else stack[0]  # (n * r, in)
        low = F.linear(self.dropout(x), a)  # (..., n * r)
        return out + F.linear(low, self._stacked_b()) * self.scaling  # (..., out)

    def _stacked_b(self) -> torch.Tensor:
        """``(out, n * r)``: each targeted slice's ``B`` at its rows and its ``A``'s columns."""
        if len(self.parts) == 1:
            return self.lora_B[self.parts[0][0]]
        blocks = [
            self.lora_B[name] if name in self.lora_B else self.weight.new_zeros(size, 0)
            for name, size in self.parts
        ]
        return torch.block_diag(*blocks)

    def delta_weight(self) -> torch.Tensor:
        """``scaling * B @ A`` of every adapter, placed at its rows: ``(out, in)``."""
        delta = torch.zeros_like(self.weight)
        start = 0
        for name, size in self.parts:
            if name in self.lora_A:
                b, a = self.lora_B[name].detach(), self.lora_A[name].detach()
                delta[start : start + size] = (b @ a) * self.scaling
            start += size
        return delta

    @torch.no_grad()
    def merge(self) -> None:
        """Add the adapters to ``weight`` (the original is kept for :meth:`unmerge`)."""
        if self.merged:
            return
        self._original = self.weight.detach().clone()
        self.weight.add_(self.delta_weight())
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Put back the weight :meth:`merge` changed, bit for bit."""
        if not self.merged or self._original is None:
            return
        self.weight.copy_(self._original)
        self._original = None
        self.merged = False

    def extra_repr(self) -> str:
        targets = ", ".join(self.lora_A.keys())
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, r={self.r}, alpha={self.alpha}, targets=[{targets}]"
        )


def projections(module: nn.Module) -> dict[str, tuple[tuple[str, int], ...]]:
    """The projections of one attention or MLP layer that take adapters:
    attribute name -> its output slices ``(target name, rows)``; ``{}`` for other modules."""
    if isinstance(module, SelfAttention):
        q, kv = module.num_heads * module.head_dim, module.num_kv_heads * module.head_dim
        out = _rows(module.out)
        return {"qkv": (("q", q), ("k", kv), ("v", kv)), "out": (("out", out),)}
    if isinstance(module, CrossAttention):
        q, kv = module.num_heads * module.head_dim, module.num_kv_heads * module.head_dim
        out = _rows(module.out)
        return {"q": (("q", q),), "kv": (("k", kv), ("v", kv)), "out": (("out", out),)}
    if isinstance(module, SwiGLU):  # GeGLU too
        hidden = _rows(module.gate_up) // 2
        return {
            "gate_up": (("gate", hidden), ("up", hidden)),
            "down": (("down", _rows(module.down)),),
        }
    if isinstance(module, GeluMLP):  # ReluMLP too
        return {"fc": (("fc", _rows(module.fc)),), "down": (("down", _rows(module.down)),)}
    return {}


def _rows(linear: nn.Module) -> int:
    return int(linear.out_features)  # type: ignore[arg-type]


def apply_lora(model: nn.Module, settings: LoRASettings) -> nn.Module:
    """Put adapters on the projections ``settings.targets`` names, in place; freeze
    every other parameter. Returns ``model``.

    A target no projection of the model has (``gate`` on a GELU MLP, say), a model that
    already has adapters, or a targeted projection that is not a plain ``nn.Linear`` is
    a ``ValueError``.
    """
    if has_lora(model):
        raise ValueError("the model already has LoRA adapters")
    available: set[str] = set()
    wrapped: list[tuple[str, nn.Module, str, list[tuple[str, int]]]] = []
    for path, module in model.named_modules():
        for attr, parts in projections(module).items():
            names = [name for name, _ in parts]
            available.update(names)
            if not set(names) & set(settings.targets):
                continue
            linear = getattr(module, attr)
            if type(linear) is not nn.Linear:
                where = f"{path}.{attr}" if path else attr
                raise ValueError(
                    f"{where} is a {type(linear).__name__}, not an nn.Linear: it cannot take "
                    "LoRA adapters"
                )
            wrapped.append((path, module, attr, list(parts)))
    missing = [t for t in settings.targets if t not in available]
    if missing:
        have = [t for t in LORA_TARGETS if t in available] or ["none"]
        raise ValueError(
            f"lora.targets: {', '.join(missing)} match no projection of this model "
            f"(it has {', '.join(have)})"
        )
    for param in model.parameters():
        param.requires_grad_(False)
    for _, module, attr, parts in wrapped:
        linear = getattr(module, attr)
        adapted = LoRALinear(linear, parts, settings.targets, settings)
        setattr(module, attr, adapted.train(linear.training))  # an eval model stays in eval
    return model


def lora_modules(model: nn.Module) -> list[tuple[str, LoRALinear]]:
    """Every :class:`LoRALinear` of ``model`` with its path."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, LoRALinear)]


def has_lora(model: nn.Module) -> bool:
    """Whether ``model`` holds adapters."""
    return any(isinstance(m, LoRALinear) for m in model.modules())


def lora_settings_of(model: nn.Module) -> LoRASettings | None:
    """The settings the adapters of ``model`` were made with (``None``: no adapters)."""
    found = lora_modules(model)
    if not found:
        return None
    first = found[0][1]
    targets = {name for _, m in found for name in m.lora_A}
    dropout = first.dropout.p if isinstance(first.dropout, nn.Dropout) else 0.0
    return LoRASettings(first.r, first.alpha, dropout, tuple(targets))


def is_lora_key(name: str) -> bool:
    """Whether a state-dict key names an adapter tensor."""
    return bool(_LORA_KEY.search(name))


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter tensors of ``model`` (detached, not copied), by state-dict name."""
    return {k: v.detach() for k, v in model.state_dict().items() if is_lora_key(k)}


def load_lora_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Copy adapter tensors ``state`` (as :func:`lora_state_dict` names them) into
    ``model``; missing, extra or misshapen tensors are a ``ValueError`` naming them."""
    if any(m.merged for _, m in lora_modules(model)):
        raise ValueError("the adapters are merged into the weights: unmerge_lora(model) first")
    own = lora_state_dict(model)
    if not own:
        raise ValueError("the model has no LoRA adapters to load into (apply_lora first)")
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    if missing or extra:
        raise ValueError(
            f"adapter tensors do not match the model's adapters: missing {missing[:5] or 'none'}"
            f" ({len(missing)}), unexpected {extra[:5] or 'none'} ({len(extra)})"
        )
    for name, tensor in own.items():
        given = state[name]
        if tuple(given.shape) != tuple(tensor.shape):
            raise ValueError(
                f"adapter tensor {name} has shape {tuple(given.shape)}, "
                f"the model's is {tuple(tensor.shape)}"
            )
    with torch.no_grad():
        for name, tensor in own.items():
            tensor.copy_(state[name])


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every adapter into its weight (forward then skips the adapters)."""
    for _, module in lora_modules(model):
        module.merge()
    return model


def unmerge_lora(model: nn.Module) -> nn.Module:
    """Undo :func:`merge_lora`: the original weights come back exactly."""
    for _, module in lora_modules(model):
        module.unmerge()
    return model


def trainable_share(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts (tied weights counted once)."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def format_trainable_share(model: nn.Module) -> str:
    """E.g. ``trainable 1.2 % (12,288 of 1,032,192 parameters)``."""
    trainable, total = trainable_share(model)
    share = 100.0 * trainable / max(1, total)
    return f"trainable {share:.3g} % ({trainable:,} of {total:,} parameters)"
