"""The founding usage example of HysoLLM, kept exactly as the founding description gives it.

Run from the repository root: python examples/quickstart.py  (leaves a run folder in ./runs)
"""
# ruff: noqa: I001
# fmt: off

from hyso.core.config import load_config_with_overrides
from hyso.core.storage import (
    RunPathFactory, get_logger, Manifest, save_manifest,
    CheckpointConfig, CheckpointManager, set_global_seed,
)
from hyso.core.tokenizer import HysoBPETokenizer
from hyso.core.models.encoder_only import HysoEncoderOnly
from hyso.core.train import Trainer

import torch
from torch.utils.data import DataLoader, TensorDataset

# 1) config loading (+ overrides)
cfg = load_config_with_overrides(
    path="configs/base.yaml",
    override_pairs=["training.lr=0.0001", "model.dim=512"],
)
# 2) run paths
factory = RunPathFactory.from_root("runs")
run_paths = factory.create()
logger = get_logger("train", log_dir=run_paths.logs_dir)
logger.info(f"Run started: {run_paths.run_id}")
# 3) seed (deterministic training)
set_global_seed(cfg.training.seed)
# 4) manifest
manifest = Manifest.new(run_id=run_paths.run_id, model=cfg.model,
                        training=cfg.training, data={"name": "dummy"})
save_manifest(run_paths.manifest_path, manifest)
logger.info("Manifest saved.")
# 5) tokenizer
tokenizer = HysoBPETokenizer(lowercase=True, normalize="NFKC", cache_size=5000)
# 6) model
model = HysoEncoderOnly(dim=cfg.model.dim, num_layers=cfg.model.layers,
                        vocab_size=tokenizer.vocab_size)
model = model.to(cfg.training.device)
# 7) dataset & dataloader
X = torch.randint(0, tokenizer.vocab_size, (100, 32))
y = torch.randint(0, tokenizer.vocab_size, (100, 32))
loader = DataLoader(TensorDataset(X, y), batch_size=cfg.training.batch_size, shuffle=True)
# 8) optimizer & scheduler
optimizer = torch.optim.Adam(model.parameters(), lr=cfg.training.lr)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10)
# 9) checkpoint manager
ckpt_cfg = CheckpointConfig.from_dir(directory=run_paths.checkpoints_dir,
                                     best_metric_name="val_loss", best_mode="min")
checkpoint_manager = CheckpointManager(ckpt_cfg)
# 10) trainer
trainer = Trainer(model=model, optimizer=optimizer, scheduler=scheduler,
                  tokenizer=tokenizer, config=cfg, run_paths=run_paths,
                  checkpoint_manager=checkpoint_manager, logger=logger)
# 11) training loop
trainer.fit(train_loader=loader, val_loader=loader, epochs=cfg.training.epochs)
logger.info("Training finished.")
