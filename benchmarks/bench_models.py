"""hyso-models against HF transformers: training-step speed, peak memory, greedy generation.

Three pairs of the same shape (dim 256, 4 layers, 4 heads, vocab 8192, float32,
random weights, nothing downloaded):

* ``HysoDecoderOnly`` (SwiGLU, RMSNorm, RoPE) vs ``LlamaForCausalLM`` (sdpa)
* ``HysoEncoderOnly`` (GELU, LayerNorm) vs ``BertForMaskedLM`` (sdpa)
* ``HysoEncoderDecoder`` (GELU, RMSNorm) vs ``T5ForConditionalGeneration``

Speed: both models of a pair live in one process and their steps alternate, so
both see the same machine load; each figure is the best of N steps. Memory: each
model trains in its own subprocess (RSS never shrinks) and reports its peak RSS
(``VmHWM``) and the growth of RSS over the training steps. Both memory workers
import the same libraries (hyso's models and the family's transformers class)
before building their model, so the peak compares the models, not the imports.

``--fusions`` instead measures what hyso's two memory-saving autograd functions
buy in the decoder's training step (RMSNorm that saves only its input and scale;
SwiGLU fused with its down projection), against the same model with them
switched off through the public route (norms replaced by ``torch.nn.RMSNorm``,
``down`` by an ``nn.Linear`` subclass, which SwiGLU calls through its forward):
saved activations of one forward (exact), peak RSS over 3 steps (subprocess per
variant) and step time (variants alternating in one process).

``--from-hf`` builds the hyso decoder from the HF Llama's own weights with
``load_hf`` (the converted model against the one it came from).

Generation: greedy, 256 new tokens after 16, at batch 1 and batch 8 (no padding);
every repeat is printed with both libraries' tokens/s, their ratio and the load
average; the table row gives the median ratio of the side-by-side pairs and their
range. ``--generation-only`` runs just these rows (with ``--compile``, also hyso
``compile=True`` against HF's static cache compiled by ``generate``).

Usage: python benchmarks/bench_models.py [--quick] [--compile] [--repeats N] [--fusions]
       [--threads N] [--families decoder,encoder,encdec] [--memory-only]
       [--generation-only] [--from-hf] [--loss own|logits]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

DIM, LAYERS, HEADS, VOCAB = 256, 4, 4, 8192
SEQ, BATCH = 256, 8
PROMPT, NEW_TOKENS = 16, 256
DEFAULT_THREADS = 2
HF_CLASSES = {
    "decoder": ("LlamaConfig", "LlamaForCausalLM"),
    "encoder": ("BertConfig", "BertForMaskedLM"),
    "encdec": ("T5Config", "T5ForConditionalGeneration"),
}


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"{key} not in /proc/self/status")


def peak_rss_mb() -> float:
    """Peak RSS of this process image. VmHWM, not ``getrusage``: ru_maxrss survives
    fork + exec, so a worker would report its parent's peak."""
    return _status_mb("VmHWM")


def current_rss_mb() -> float:
    return _status_mb("VmRSS")


Row = tuple[str, str, str, str, str]


# -- model builders -----------------------------------------------------------------------


def build(family: str, impl: str, compile: bool = False) -> torch.nn.Module:
    torch.manual_seed(0)
    if impl == "hyso" and family == "decoder" and os.environ.get(FROM_HF_VAR):
        return build_from_hf(compile)
    if impl == "hyso":
        from hyso.core.models import HysoDecoderOnly, HysoEncoderDecoder, HysoEncoderOnly

        common = dict(dim=DIM, num_layers=LAYERS, num_heads=HEADS, vocab_size=VOCAB)
        if family == "decoder":
            return HysoDecoderOnly(**common, max_seq_len=2 * SEQ, compile=compile)
        if family == "encoder":
            return HysoEncoderOnly(
                **common, max_seq_len=2 * SEQ, mlp="gelu", norm="layernorm", compile=compile
            )
        return HysoEncoderDecoder(**common, max_seq_len=2 * SEQ, mlp="gelu", compile=compile)
    if family == "decoder":
        from transformers import LlamaConfig, LlamaForCausalLM

        hidden = -(-8 * DIM // (3 * 64)) * 64  # the same SwiGLU width as ours (704)
        config = LlamaConfig(
            vocab_size=VOCAB,
            hidden_size=DIM,
            intermediate_size=hidden,
            num_hidden_layers=LAYERS,
            num_attention_heads=HEADS,
            num_key_value_heads=HEADS,
            max_position_embeddings=2 * SEQ,
            tie_word_embeddings=True,
        )
        config._attn_implementation = "sdpa"
        return LlamaForCausalLM(config)
    if family == "encoder":
        from transformers import BertConfig, BertForMaskedLM

        config = BertConfig(
            vocab_size=VOCAB,
            hidden_size=DIM,
            num_hidden_layers=LAYERS,
            num_attention_heads=HEADS,
            intermediate_size=4 * DIM,
            max_position_embeddings=2 * SEQ,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )
        config._attn_implementation = "sdpa"
        return BertForMaskedLM(config)
    from transformers import T5Config, T5ForConditionalGeneration

    config = T5Config(
        vocab_size=VOCAB,
        d_model=DIM,
        d_kv=DIM // HEADS,
        d_ff=4 * DIM,
        num_layers=LAYERS,
        num_decoder_layers=LAYERS,
        num_heads=HEADS,
        dropout_rate=0.0,
        feed_forward_proj="gelu_new",
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
        tie_word_embeddings=True,
    )
    return T5ForConditionalGeneration(config)


# Set by --from-hf (and inherited by the memory workers): the hyso decoder is the HF
# Llama's own weights, converted with load_hf.
FROM_HF_VAR = "HYSO_BENCH_FROM_HF"


def build_from_hf(compile: bool) -> torch.nn.Module:
    """The HF Llama of ``build("decoder", "hf")``, saved and loaded with ``load_hf``."""
    from hyso.core.models import HysoDecoderOnly, load_hf

    with tempfile.TemporaryDirectory() as tmp:
        build("decoder", "hf").save_pretrained(tmp)
        model = load_hf(tmp)
    if not compile:
        return model
    compiled = HysoDecoderOnly(model.config, compile=True)
    compiled.load_state_dict(model.state_dict())
    return compiled


LOSS_VAR = "HYSO_BENCH_LOSS"  # --loss, passed on to the memory workers


def train_step_fn(family: str, impl: str, model: torch.nn.Module) -> Callable[[], None]:
    """One forward + backward + AdamW step on a fixed random batch: mean token
    cross-entropy over the same targets. For the decoder pair each library computes it
    its own way by default (``model(inputs, targets=...)`` against Llama's
    ``model(input_ids, labels=..., shift_labels=...).loss``, the same targets without a
    shift); ``--loss logits`` (and the other families) compute it here from the returned
    logits."""
    gen = torch.Generator().manual_seed(1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(2, VOCAB, (BATCH, SEQ + 1), generator=gen)
    inputs, targets = ids[:, :-1], ids[:, 1:].contiguous()
    if family == "encdec":
        src = torch.randint(2, VOCAB, (BATCH, SEQ), generator=gen)
        if impl == "hyso":

            def logits() -> torch.Tensor:
                return model(src, inputs)
        else:

            def logits() -> torch.Tensor:
                return model(input_ids=src, decoder_input_ids=inputs).logits
    elif impl == "hyso":

        def logits() -> torch.Tensor:
            return model(inputs)
    else:

        def logits() -> torch.Tensor:
            return model(input_ids=inputs).logits

    def loss_fn() -> torch.Tensor:
        out = logits()
        return F.cross_entropy(out.reshape(-1, VOCAB), targets.reshape(-1))

    if family == "decoder" and os.environ.get(LOSS_VAR, "own") == "own":
        if impl == "hyso":

            def loss_fn() -> torch.Tensor:
                return model(inputs, targets=targets)
        else:

            def loss_fn() -> torch.Tensor:
                return model(input_ids=inputs, labels=targets, shift_labels=targets).loss

    def step() -> None:
        loss = loss_fn()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def generate_fn(
    family: str, impl: str, model: torch.nn.Module, batch: int = 1, static: bool = False
) -> Callable[[], torch.Tensor]:
    """Greedy generation of NEW_TOKENS from PROMPT-token prompts (``batch`` rows, no
    padding), KV cache; returns the ids. ``static``: HF with its static cache and its
    forward compiled by ``generate`` (hyso is compiled with ``compile=True`` instead)."""
    gen = torch.Generator().manual_seed(2)
    prompt = torch.randint(2, VOCAB, (batch, PROMPT), generator=gen)
    model.eval()
    if impl.startswith("hyso"):
        if family == "encdec":

            def run() -> torch.Tensor:
                return model.generate(prompt, NEW_TOKENS, decoder_start_token_id=0)
        else:

            def run() -> torch.Tensor:
                return model.generate(prompt, NEW_TOKENS)

        return run
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    extra: dict[str, Any] = {}
    if static:
        from transformers.generation.configuration_utils import CompileConfig

        compile_config = CompileConfig(mode="default")
        compile_config._compile_all_devices = True  # CPU too
        extra = {"cache_implementation": "static", "compile_config": compile_config}

    def run_hf() -> torch.Tensor:
        with torch.inference_mode():
            return model.generate(
                prompt,
                max_new_tokens=NEW_TOKENS,
                min_new_tokens=NEW_TOKENS,
                do_sample=False,
                use_cache=True,
                **extra,
            )

    return run_hf


GEN_BATCHES = (1, 8)


def load_now() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def generation_rows(
    family: str, models: dict[str, torch.nn.Module], repeats: int, compiled: bool = False
) -> list[Row]:
    """Greedy generation, hyso and HF alternating in this process, at each batch of
    GEN_BATCHES. Every repeat is printed with its tokens/s (wall and CPU time), the
    hyso / HF ratio of that side-by-side pair and the 1-minute load average; the row
    holds the median of the per-pair ratios and the range. ``compiled``: the models are
    hyso ``compile=True`` and HF with a static cache compiled by ``generate``."""
    rows: list[Row] = []
    for batch in GEN_BATCHES:
        fns = {
            name: generate_fn(family, name, m, batch, static=compiled and name == "hf")
            for name, m in models.items()
        }
        outs = {name: fn() for name, fn in fns.items()}  # warm-up (and compilation)
        # The same weights only with --from-hf; otherwise the two models differ.
        same = None
        if family == "decoder" and os.environ.get(FROM_HF_VAR):
            same = torch.equal(outs["hyso"], outs["hf"])
        tag = " compiled" if compiled else ""
        print(f"  generation{tag} batch {batch}: tokens equal to HF: {same}", flush=True)
        wall: dict[str, list[float]] = {name: [] for name in fns}
        ratios, cpu_ratios = [], []
        for i in range(repeats):
            cpu: dict[str, float] = {}
            for name, fn in fns.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                fn()
                wall[name].append(batch * NEW_TOKENS / (time.perf_counter() - start))
                cpu[name] = batch * NEW_TOKENS / (time.process_time() - start_cpu)
            ratios.append(wall["hyso"][-1] / wall["hf"][-1])
            cpu_ratios.append(cpu["hyso"] / cpu["hf"])
            print(
                f"    repeat {i}: HF {wall['hf'][-1]:,.0f} tok/s, hyso {wall['hyso'][-1]:,.0f}"
                f" tok/s, ratio {ratios[-1]:.2f}x (CPU time {cpu_ratios[-1]:.2f}x), "
                f"load {load_now()}",
                flush=True,
            )
        ratios.sort()
        measure = f"greedy generate tokens/s, batch {batch}{tag}"
        cell = f"{statistics.median(ratios):.2f}x ({ratios[0]:.2f}-{ratios[-1]:.2f})"
        hf, ours = statistics.median(wall["hf"]), statistics.median(wall["hyso"])
        rows.append((family, measure, f"{hf:,.0f}", f"{ours:,.0f}", cell))
    return rows


def best_of(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Alternate the functions ``repeats`` times; the best wall time of each, in seconds."""
    best = {name: float("inf") for name in fns}
    for fn in fns.values():  # warm-up (allocator, lazy init, compilation)
        fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


# -- fusions on and off ---------------------------------------------------------------------

FUSION_VARIANTS = ("fused", "no-norm", "no-swiglu", "plain")


class _PlainLinear(torch.nn.Linear):
    """An ``nn.Linear`` subclass: SwiGLU then calls it instead of its fused function."""


def unfuse(model: torch.nn.Module, variant: str) -> torch.nn.Module:
    """Switch off the RMSNorm and/or SwiGLU autograd functions of a hyso model."""
    from hyso.core.models.layers import RMSNorm, SwiGLU

    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if variant in ("no-norm", "plain") and isinstance(child, RMSNorm):
                plain = torch.nn.RMSNorm(child.weight.shape[0], eps=child.eps)
                plain.weight = child.weight
                setattr(module, name, plain)
            if variant in ("no-swiglu", "plain") and isinstance(child, SwiGLU):
                down = _PlainLinear(child.down.in_features, child.down.out_features, bias=False)
                down.weight = child.down.weight
                child.down = down
    return model


def saved_activations_mb(model: torch.nn.Module, ids: torch.Tensor) -> float:
    """Bytes of the tensors autograd keeps for backward after one forward, in MB."""
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(ids)
    return sum(storages.values()) / 2**20


def run_fusions(repeats: int, threads: int) -> None:
    rows = [(v, run_memory("decoder", f"hyso:{v}", 3, threads)) for v in FUSION_VARIANTS]
    models = {v: unfuse(build("decoder", "hyso"), v) for v in FUSION_VARIANTS}
    times = best_of({v: train_step_fn("decoder", "hyso", m) for v, m in models.items()}, repeats)
    print("| variant | saved activations MB | train peak RSS MB | train tokens/s |")
    print("|---|---:|---:|---:|")
    for variant, mem in rows:
        tps = BATCH * SEQ / times[variant]
        print(f"| {variant} | {mem['saved_mb']:.1f} | {mem['peak_rss_mb']:.0f} | {tps:,.0f} |")


# -- subprocess workers ---------------------------------------------------------------------


def import_both(family: str) -> None:
    """Import what either side of a pair needs, so both memory workers carry the same
    libraries (transformers alone adds about 40 MB of RSS) and their peaks differ only
    by the model and its training step."""
    import importlib

    import transformers

    importlib.import_module("hyso.core.models")
    for name in HF_CLASSES[family]:
        getattr(transformers, name)  # resolves the lazy module of this family


def memory_worker(family: str, impl: str, steps: int, threads: int) -> dict[str, float]:
    torch.set_num_threads(threads)
    impl, _, variant = impl.partition(":")
    import_both(family)
    imports_mb = current_rss_mb()
    model = build(family, impl)
    result = {"imports_rss_mb": imports_mb}
    if variant:
        unfuse(model, variant)
        ids = torch.randint(2, VOCAB, (BATCH, SEQ), generator=torch.Generator().manual_seed(1))
        result["saved_mb"] = saved_activations_mb(model, ids)
    step = train_step_fn(family, impl, model)
    before = current_rss_mb()
    for _ in range(steps):
        step()
    return {**result, "peak_rss_mb": peak_rss_mb(), "step_growth_mb": peak_rss_mb() - before}


def run_memory(family: str, impl: str, steps: int, threads: int) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--memory-worker", family, impl, str(steps)]
    cmd += ["--threads", str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _ratio_row(family: str, measure: str, hf: float, ours: float, fmt: str) -> Row:
    return (family, measure, format(hf, fmt), format(ours, fmt), f"{ours / hf:.2f}x")


def memory_rows(family: str, threads: int, runs: int = 1) -> list[Row]:
    """Peak RSS and RSS growth of 3 training steps, a fresh subprocess per model and run
    (HF and hyso alternating); both import the same libraries (see ``import_both``).
    With several runs each cell is the median and the range follows in brackets."""
    mem: dict[str, list[dict[str, float]]] = {"hf": [], "hyso": []}
    for _ in range(runs):
        for impl in mem:
            mem[impl].append(run_memory(family, impl, 3, threads))

    def cell(impl: str, key: str) -> str:
        values = sorted(m[key] for m in mem[impl])
        mid = statistics.median(values)
        return f"{mid:.0f}" if runs == 1 else f"{mid:.0f} ({values[0]:.0f}-{values[-1]:.0f})"

    rows = []
    for key, measure in (
        ("imports_rss_mb", "RSS after imports MB"),
        ("peak_rss_mb", "train peak RSS MB"),
        ("step_growth_mb", "train RSS growth MB"),
    ):
        hf = statistics.median(m[key] for m in mem["hf"])
        ours = statistics.median(m[key] for m in mem["hyso"])
        rows.append((family, measure, cell("hf", key), cell("hyso", key), f"{ours / hf:.2f}x"))
    return rows


def bench_family(family: str, repeats: int, compile: bool, threads: int) -> list[Row]:
    """Speed, memory and (but for the encoder) generation rows of one pair of models."""
    models = {"hyso": build(family, "hyso"), "hf": build(family, "hf")}
    if compile:
        models["hyso+compile"] = build(family, "hyso", compile=True)
    steps = {
        name: train_step_fn(family, "hf" if name == "hf" else "hyso", m)
        for name, m in models.items()
    }
    times = best_of(steps, repeats)
    tps = {name: BATCH * SEQ / t for name, t in times.items()}
    rows = [_ratio_row(family, "train tokens/s", tps["hf"], tps["hyso"], ",.0f")]
    if compile:
        rows.append(
            _ratio_row(family, "train tokens/s (compile)", tps["hf"], tps["hyso+compile"], ",.0f")
        )
    rows += memory_rows(family, threads)
    if family != "encoder":
        rows += generation_rows(family, {n: models[n] for n in ("hyso", "hf")}, repeats)
    for row in rows:
        print("  " + " | ".join(row), flush=True)
    return rows


def bench_generation(family: str, repeats: int, compile: bool) -> list[Row]:
    """Generation rows only: eager against eager, and with ``compile`` also hyso
    ``compile=True`` against HF's static cache compiled by ``generate``."""
    rows = generation_rows(
        family, {"hyso": build(family, "hyso"), "hf": build(family, "hf")}, repeats
    )
    if compile:
        models = {"hyso": build(family, "hyso", compile=True), "hf": build(family, "hf")}
        rows += generation_rows(family, models, repeats, compiled=True)
    for row in rows:
        print("  " + " | ".join(row), flush=True)
    return rows


# -- main -----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, decoder only")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--families", default=None, help="comma list: decoder,encoder,encdec")
    parser.add_argument("--fusions", action="store_true", help="fusions on/off, decoder only")
    parser.add_argument(
        "--threads", type=int, default=DEFAULT_THREADS, help="torch threads (default 2)"
    )
    parser.add_argument(
        "--memory-only", action="store_true", help="peak memory rows only (no timing)"
    )
    parser.add_argument(
        "--memory-runs", type=int, default=3, help="with --memory-only: subprocess pairs (median)"
    )
    parser.add_argument(
        "--from-hf", action="store_true", help="the hyso decoder is the HF Llama, via load_hf"
    )
    parser.add_argument(
        "--generation-only",
        action="store_true",
        help="greedy generation rows only (decoder,encdec), batches 1 and 8",
    )
    parser.add_argument(
        "--loss",
        choices=("own", "logits"),
        default="own",
        help="decoder training loss: each library's own (default) or cross-entropy on logits",
    )
    parser.add_argument("--memory-worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    if args.from_hf:
        os.environ[FROM_HF_VAR] = "1"
    if not args.memory_worker:  # a worker inherits the variable from its parent
        os.environ[LOSS_VAR] = args.loss
    if args.memory_worker:
        family, impl, steps = args.memory_worker
        print(json.dumps(memory_worker(family, impl, int(steps), args.threads)))
        return 0

    torch.set_num_threads(args.threads)
    repeats = args.repeats or (3 if args.quick else 6)
    if args.fusions:
        run_fusions(repeats, args.threads)
        return 0
    default = "decoder" if args.quick or args.generation_only else "decoder,encoder,encdec"
    families = (args.families or default).split(",")
    if args.generation_only and "encoder" in families:
        parser.error("--generation-only: the encoder does not generate")
    unknown = sorted(set(families) - set(HF_CLASSES))
    if unknown:
        parser.error(f"--families: unknown {unknown}; choose from {sorted(HF_CLASSES)}")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"torch {torch.__version__}, {args.threads} threads, float32; dim {DIM}, {LAYERS} layers, "
        f"{HEADS} heads, vocab {VOCAB}; train batch {BATCH} x seq {SEQ}; "
        + (
            f"memory only, median of {args.memory_runs} subprocess pairs; "
            if args.memory_only
            else f"generate {NEW_TOKENS} tokens from {PROMPT}, batches {GEN_BATCHES}; "
            f"best of {repeats}, generation: every repeat and the median ratio; "
        )
        + f"load average {load}\n",
        flush=True,
    )
    names = {
        "decoder": "LlamaForCausalLM",
        "encoder": "BertForMaskedLM",
        "encdec": "T5ForConditionalGeneration",
    }
    rows: list[tuple[str, str, str, str, str]] = []
    for family in families:
        if args.memory_only:
            rows += memory_rows(family, args.threads, args.memory_runs)
        elif args.generation_only:
            rows += bench_generation(family, repeats, args.compile)
        else:
            rows += bench_family(family, repeats, args.compile, args.threads)
    print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("\n| model | measure | HF transformers | hyso | hyso / HF |")
    print("|---|---|---:|---:|---:|")
    for family, measure, hf, ours, ratio in rows:
        print(f"| {family} vs {names[family]} | {measure} | {hf} | {ours} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
