"""The one training loop for every model × operator × data set.

:func:`train` runs a validated protocol (see :mod:`.config`) in a run folder that is new,
empty or one of ours (:class:`.run_folder.RunFolder`; created only once everything is built)::

    RUN_DIR/protocol.toml     the resolved protocol
    RUN_DIR/last.state.pt     everything needed to resume (weights, optimizer, RNG, counters)
    RUN_DIR/last.safetensors  latest model checkpoint;  RUN_DIR/best.safetensors  best on validation
    RUN_DIR/log.jsonl, log.csv  every metric (train loss per step, validation per evaluation)

Stages: the main stage (``training.epochs`` at ``data.patch_size``) and an optional fine-tuning
stage (``training.finetune``: e.g. MADUN's 99×99 patches).  A run killed at any moment
resumes from ``last.state.pt`` with ``resume=True`` and continues the identical trajectory:
data order (seeded per epoch, skipping the batches already done), optimizer, scheduler and
RNG states are restored.  Under ``torchrun`` the model is wrapped in DDP; gradients of
trainable operator parameters (a learned Φ) are all-reduced by hand; only rank 0 writes.
"""
from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader
from tqdm import tqdm

from .. import checkpoints as ckpt
from ..device import resolve_device, set_determinism
from ..errors import UserError
from ..fastpath import compile_with_fallback
from ..operators import Fp32Operator
from . import state as train_state
from .components import (autocast_context, build_loss, build_model, build_optimizer,
                         build_scheduler, check_run_settings, enable_grad_checkpoint,
                         init_weights, make_scaler)
from .config import diff_configs, to_toml
from .data import build_dataset, epoch_batches, full_dataset, item_shape, training_stages
from .distributed import init_distributed
from .logs import RunLogger
from .run_folder import STATE_FILE, RunFolder
from .self_supervised import SelfSupervisedTask, SSDUConfig
from .tasks import ImageTask, build_task
from .validation import Validation

LAST_CKPT = "last.safetensors"
BEST_CKPT = "best.safetensors"
QINIT_IMAGES = 2000  # training patches used for a computed Qinit


class Trainer:
    """Holds one run's objects; :meth:`run` trains.  See :func:`train`."""

    def __init__(self, cfg: dict, run_dir: str | Path, device: str | None = None,
                 resume: bool = False, progress: bool | None = None,
                 on_step: Callable[["Trainer"], None] | None = None):
        self.cfg, self.run_dir = cfg, Path(run_dir)
        self.tcfg = cfg["training"]
        self.dist, self.device = init_distributed(resolve_device(device))
        self.folder = RunFolder(self.run_dir)
        if self.dist.is_main:  # refuse a folder that is not ours before anything else
            self.folder.open(resume)
        try:
            self._setup(resume, progress, on_step)
        except BaseException:
            self.folder.unlock()
            raise

    def _setup(self, resume: bool, progress, on_step) -> None:
        cfg = self.cfg
        self.progress = self.tcfg["progress"] if progress is None else progress
        self.on_step = on_step
        self.stages = training_stages(cfg)
        set_determinism(self.tcfg["deterministic"])
        state = self._check_run_dir(resume)
        # data of the current stage (rebuilt when a stage starts)
        self.stage_idx = int(state["stage"]) if state else 0
        self.dataset = self._dataset(self.stages[self.stage_idx])
        check_run_settings(cfg, self.device)
        # operator + task (a stored operator is reused on resume: a learned Φ, a computed Qinit)
        op_t = state["operator"] if state else None
        op_cfg = json.loads(state["operator_json"]) if state else cfg["operator"]
        self.task = build_task(op_cfg, tensors=op_t, image_shape=item_shape(self.dataset))
        if self.self_supervised:
            self.task = SelfSupervisedTask(self.task, SSDUConfig.from_table(
                self.tcfg["ssdu"], not self.task.complex_domain), cfg["seed"])
        if isinstance(self.task, ImageTask):
            self.task.check_item(self.dataset[0])
        if isinstance(self.task, ImageTask) and self.task.needs_qinit:
            src = full_dataset(self.dataset)  # all images, not a max_images head
            n = min(len(src), QINIT_IMAGES)
            self.task.compute_qinit(torch.stack([src[i] for i in range(n)]))
        self.task.to(self.device)
        self.model = build_model(cfg["model"], self.task.op).to(self.device)
        if self.tcfg["init_from"] and not state:
            init_weights(self.model, cfg["model"], self.tcfg["init_from"])
        if self.tcfg["grad_checkpoint"]:
            enable_grad_checkpoint(self.model)
        if self.tcfg["channels_last"]:  # 4-D weights; conv outputs follow their format
            self.model.to(memory_format=torch.channels_last)
        self.loss_fn = self.task.loss if self.self_supervised else build_loss(self.tcfg)
        self.validation = Validation(cfg, self.task, self.device)
        op_module = self.task.op if isinstance(self.task.op, torch.nn.Module) else None
        self.op_params = ([p for p in op_module.parameters() if p.requires_grad]
                          if op_module is not None else [])
        self.params = [p for p in self.model.parameters() if p.requires_grad] + self.op_params
        self.opt = build_optimizer(self.params, self.tcfg, self.stages[self.stage_idx]["lr"])
        self.sched = build_scheduler(self.opt, self.tcfg, self.stages[self.stage_idx]["epochs"])
        self.scaler = make_scaler(self.tcfg["precision"], self.device)
        self.net = self.model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DDP(self.model, device_ids=ids)
        if self.tcfg["compile"]:  # the loop calls the compiled net; checkpoints use self.model
            m = self.tcfg["compile_mode"]
            self.net = compile_with_fallback(self.net, **({"mode": m} if m != "default" else {}))
        self.epoch = self.batch_in_epoch = self.step = 0
        self.best = -math.inf
        self.last_val_step = -1
        if state:
            self._restore(state)
        if self.dist.is_main:  # created only once everything above has worked
            for p in self.folder.create(resume):
                print(f"mri-unfold: note: removed {p.name}, left by a killed run", file=sys.stderr)
        self.logger = RunLogger(self.run_dir, enabled=self.dist.is_main,
                                resume_step=self.step if state else None,
                                resume_val_step=self.last_val_step if state else None)
        if self.dist.is_main:
            kept = self.folder.write_protocol(to_toml(cfg), self.step)
            if kept is not None:
                print(f"mri-unfold: note: the settings changed; the previous protocol is kept as "
                      f"{kept.name}", file=sys.stderr)
            if state:
                self._sync_last_checkpoint()

    # ------------------------------------------------------------------ setup helpers
    def _check_run_dir(self, resume: bool) -> dict | None:
        state_path = self.run_dir / STATE_FILE
        if resume:
            st = train_state.load_train_state(state_path)
            old = json.loads(st.get("protocol_json", "{}"))
            changed = diff_configs(old, self.cfg) if old else []
            if old and old["model"] != self.cfg["model"]:
                raise UserError(f"{state_path}: the run was trained with model "
                                f"{old['model']['name']!r} {old['model']['config']}, the protocol "
                                f"now asks for {self.cfg['model']['name']!r} "
                                f"{self.cfg['model']['config']}")
            if changed and self.dist.is_main:
                print(f"mri-unfold: note: resuming with changed settings: {', '.join(changed)}",
                      file=sys.stderr)
            return st
        if state_path.exists():
            raise UserError(f"{self.run_dir}: already holds a training run; pass --resume to "
                            "continue it or choose another --run-dir")
        return None

    @property
    def self_supervised(self) -> bool:
        """``training.objective = "ssdu"``: no reference image is read."""
        return self.tcfg["objective"] == "ssdu"

    def _dataset(self, stage: dict):
        return build_dataset(self.cfg["data"], self.cfg["seed"], stage["patch_size"],
                             with_references=not self.self_supervised)

    def _restore(self, st: dict) -> None:
        self.model.load_state_dict(st["model"])
        if isinstance(self.task.op, torch.nn.Module):
            self.task.op.load_state_dict(st["operator"], strict=False)
        self.opt.load_state_dict(st["optimizer"])
        self.sched.load_state_dict(st["scheduler"])
        if self.scaler is not None and st.get("scaler"):
            self.scaler.load_state_dict(st["scaler"])
        train_state.restore_rng(st["rng"])
        self.epoch, self.batch_in_epoch = int(st["epoch"]), int(st["batch_in_epoch"])
        self.step, self.best = int(st["step"]), float(st["best"])
        self.last_val_step = int(st.get("last_val_step", -1))

    def _sync_last_checkpoint(self) -> None:
        """On resume, rewrite a ``last.safetensors`` not at the state's step (a kill between
        the two writes) from the restored state, and say so."""
        path = self.run_dir / LAST_CKPT
        at = None
        if path.is_file():
            try:
                at = ckpt.read_checkpoint_info(path).get("step")
            except UserError:
                at = None
        if at != self.step:
            ckpt.save_checkpoint(path, self.model, self.task.op, self.task.operator_cfg,
                                 self.cfg, self._info())
            print(f"mri-unfold: note: {LAST_CKPT} was at step {at}, the training state at step "
                  f"{self.step}: resuming from the state and rewrote {LAST_CKPT} from it",
                  file=sys.stderr)

    @property
    def global_epoch(self) -> int:
        return sum(s["epochs"] for s in self.stages[:self.stage_idx]) + self.epoch

    # ------------------------------------------------------------------ checkpoints
    def save(self) -> None:
        """Write ``last.state.pt`` and ``last.safetensors`` (main rank only)."""
        if not self.dist.is_main:
            return
        st = {"model": self.model.state_dict(), "operator": self.task.operator_state(),
              "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
              "scaler": self.scaler.state_dict() if self.scaler is not None else {},
              "rng": train_state.rng_state(), "stage": self.stage_idx, "epoch": self.epoch,
              "batch_in_epoch": self.batch_in_epoch, "step": self.step, "best": self.best,
              "last_val_step": self.last_val_step,
              "protocol_json": json.dumps(self.cfg),
              "operator_json": json.dumps(self.task.operator_cfg)}
        train_state.save_train_state(self.run_dir / STATE_FILE, st)
        ckpt.save_checkpoint(self.run_dir / LAST_CKPT, self.model, self.task.op,
                             self.task.operator_cfg, self.cfg, self._info())

    def _info(self, **extra) -> dict:
        return {"step": self.step, "epoch": self.global_epoch, "source": "mri-unfold train",
                **extra}

    # ------------------------------------------------------------------ one step
    def network_operator(self, op):
        """The operator as the network sees it: ``op`` itself in fp32, else wrapped in
        :class:`~mri_unfold.fastpath.Fp32Operator` (Φ products and FFTs stay in
        fp32/complex64 inside autocast; gradients still reach a learned Φ)."""
        return op if self.tcfg["precision"] == "fp32" else Fp32Operator(op)

    def train_step(self, batch) -> float:
        """Forward, loss, backward, (clip), optimizer step; returns the loss value.

        The measurements ``y`` are computed outside autocast (exactly the fp32 ``y``); only
        the network runs under ``training.precision``'s autocast.  An operator with a
        ``training_step(step)`` context (e.g. a learned mask's per-step sample) is inside it.
        """
        self.model.train()
        scope = getattr(self.task.op, "training_step", None)
        with scope(self.step) if scope is not None else contextlib.nullcontext():
            y, op, target = self.task.prepare(batch, self.device, step=self.step)
            with autocast_context(self.tcfg["precision"], self.device):
                x, aux = self.net(y, self.network_operator(op), return_aux=True)
                x, target, aux = self.task.loss_inputs(x, target, aux)
                loss = self.loss_fn(x.float() if not x.is_complex() else x, target, aux)
        self.opt.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()
        if self.dist.enabled and self.op_params:
            for p in self.op_params:
                if p.grad is not None:
                    torch.distributed.all_reduce(p.grad)
                    p.grad /= self.dist.world_size
        if self.tcfg["grad_clip"] > 0:
            if self.scaler is not None:
                self.scaler.unscale_(self.opt)
            torch.nn.utils.clip_grad_norm_(self.params, self.tcfg["grad_clip"])
        if self.scaler is not None:
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            self.opt.step()
        return float(loss.detach())

    # ------------------------------------------------------------------ validation
    def validate(self) -> dict | None:
        """Validate (main rank, :class:`.validation.Validation`); keeps ``best.safetensors``."""
        if not self.validation.enabled:
            return None
        result = None
        if self.dist.is_main:
            result, metrics, score = self.validation.run(self.model)
            self.logger.log(self.step, self.global_epoch, "val", **metrics)
            self.last_val_step = self.step
            if score > self.best:
                self.best = score
                ckpt.save_checkpoint(self.run_dir / BEST_CKPT, self.model, self.task.op,
                                     self.task.operator_cfg, self.cfg,
                                     self._info(**{f"val_{k}": v for k, v in metrics.items()}))
        self.dist.barrier()
        return result

    # ------------------------------------------------------------------ the loop
    def run(self) -> dict:
        """Train until the protocol's epochs (or ``training.max_steps``) are done, then
        release the run folder.

        Returns:
            ``{"step", "epoch", "losses" (this process's per-step losses), "best"}``.
        """
        try:
            return self._train()
        finally:
            self.folder.unlock()

    def _train(self) -> dict:
        t, losses = self.tcfg, []
        self.started = (time.perf_counter(), self.step)
        while self.stage_idx < len(self.stages):
            stage = self.stages[self.stage_idx]
            bs = stage["batch_size"]
            if bs % self.dist.world_size:
                raise UserError(f"batch size {bs} is not divisible by the {self.dist.world_size}"
                                " DDP processes")
            while self.epoch < stage["epochs"]:
                if self._max_reached():
                    return self._summary(losses)
                ge = self.global_epoch
                batches = epoch_batches(self.dataset, ge, self.cfg["seed"],
                                        bs // self.dist.world_size, self.dist.rank,
                                        self.dist.world_size, skip=self.batch_in_epoch)
                loader = DataLoader(self.dataset, batch_sampler=batches,
                                    collate_fn=getattr(self.dataset, "collate_fn", None),
                                    num_workers=self.cfg["data"]["num_workers"],
                                    pin_memory=self.device.type == "cuda")
                bar = tqdm(loader, desc=f"{stage['name']} epoch {ge + 1}",
                           disable=not (self.progress and self.dist.is_main), leave=False,
                           file=sys.stderr, initial=self.batch_in_epoch,
                           total=self.batch_in_epoch + len(batches))
                t0 = time.perf_counter()
                for batch in bar:
                    loss = self.train_step(batch)
                    self.step += 1
                    self.batch_in_epoch += 1
                    losses.append(loss)
                    if not math.isfinite(loss):
                        raise UserError(f"training diverged: loss is {loss} at step "
                                        f"{self.step}; lower training.lr or enable "
                                        "training.grad_clip")
                    n = len(batch) * self.dist.world_size
                    rate = n / max(time.perf_counter() - t0, 1e-9)
                    t0 = time.perf_counter()
                    bar.set_postfix(loss=f"{loss:.4g}", img_s=f"{rate:.1f}")
                    if self.step % max(1, t["log_every"]) == 0:
                        self.logger.log(self.step, ge, "train", loss=loss,
                                        lr=self.opt.param_groups[0]["lr"], images_per_s=rate)
                    if t["checkpoint_every"] and self.step % t["checkpoint_every"] == 0:
                        self.save()
                    if self.on_step is not None:
                        self.on_step(self)
                    if self._max_reached():
                        break
                bar.close()
                if self._max_reached() and self.batch_in_epoch < len(batches) + batches.skip:
                    self.save()
                    return self._summary(losses)
                self.epoch += 1
                self.batch_in_epoch = 0
                self.sched.step()
                every = self.cfg["evaluation"]["every"]
                if every and self.epoch % every == 0:
                    self.validate()
                self.save()
            self._next_stage()
        return self._summary(losses)

    def _max_reached(self) -> bool:
        """``training.max_steps`` reached, or ``training.max_seconds`` of this process's
        training spent (checked once it has made a step)."""
        t, (t0, step0) = self.tcfg, self.started
        if t["max_seconds"] and self.step > step0 and time.perf_counter() - t0 >= t["max_seconds"]:
            return True
        return bool(t["max_steps"]) and self.step >= t["max_steps"]

    def _next_stage(self) -> None:
        self.stage_idx += 1
        self.epoch = self.batch_in_epoch = 0
        if self.stage_idx < len(self.stages):
            stage = self.stages[self.stage_idx]
            self.dataset = self._dataset(stage)
            for g in self.opt.param_groups:
                g["lr"] = g["initial_lr"] = stage["lr"]
            self.sched = build_scheduler(self.opt, self.tcfg, stage["epochs"])
            self.save()

    def _summary(self, losses) -> dict:
        return {"step": self.step, "epoch": self.global_epoch, "losses": losses, "best": self.best}


def train(cfg: dict, run_dir: str | Path, device: str | None = None, resume: bool = False,
          progress: bool | None = None, on_step=None) -> dict:
    """Train a validated protocol in ``run_dir`` (see module doc); returns the summary of
    :meth:`Trainer.run`.  ``on_step(trainer)`` is called after every optimizer step."""
    trainer = Trainer(cfg, run_dir, device=device, resume=resume, progress=progress,
                      on_step=on_step)
    try:
        return trainer.run()
    finally:
        trainer.dist.close()
