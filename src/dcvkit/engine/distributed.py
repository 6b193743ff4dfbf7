"""Training on several processes: DistributedDataParallel through ``torch.distributed``, launched by torchrun.

dcvkit writes neither a launcher nor a gradient exchange of its own. ``dcv <task> train --devices N
[--num-nodes M]`` starts N processes per machine with torch's elastic launcher (the engine behind ``torchrun``;
:func:`launch`), and ``torchrun --nproc-per-node N -m dcvkit <task> train ...`` does the same by hand. Each
process then:

* joins the process group torchrun prepared (:func:`setup`): gloo on CPU, nccl on CUDA (one GPU per process);
* reads its own part of every epoch (:class:`dcvkit.data.core.Shard`): the same seeded permutation on every
  rank, rank ``r`` taking every ``world``-th image from position ``r``, so the ranks' data are disjoint and the
  union of their batches at step k is exactly the single-process run's batch k (``--batch-size`` is the
  global batch; each rank gets ``batch_size / world``);
* trains the task's model wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`, whose forward is the
  task's whole training step (:class:`StepModule`; Lightning's trick), so every task's step runs unchanged;
* leaves logging, checkpoints, plots and the test evaluation to rank 0, which also validates (on the whole
  validation split) and broadcasts the metrics, so early stopping and plateau schedules decide alike everywhere.

One process (no torchrun) is rank 0 of a world of 1, and every helper here is then a no-op.
"""

from __future__ import annotations

import datetime
import logging
import os
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn

from dcvkit.engine.runtime import resolve_device
from dcvkit.errors import ConfigError

# Where the workers of `dcv ... --devices N` leave their one-line error for the launcher, which prints it once.
ERROR_DIR_ENV = "DCV_DIST_ERRORS"


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (torchrun's RANK, LOCAL_RANK, WORLD_SIZE, ...)."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1
    local_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def nodes(self) -> int:
        return max(1, self.size // max(self.local_size, 1))


def world() -> World:
    """This process's :class:`World`, read from the environment torchrun sets (without it: rank 0 of 1)."""
    env = os.environ
    if "RANK" not in env or "WORLD_SIZE" not in env:
        return World()
    return World(int(env["RANK"]), int(env.get("LOCAL_RANK", 0)), int(env["WORLD_SIZE"]),
                 int(env.get("LOCAL_WORLD_SIZE", env["WORLD_SIZE"])))


def setup(device_name: str) -> tuple[World, torch.device]:
    """This process's place and device (``--device`` resolved; its own GPU, ``cuda:LOCAL_RANK``, when several
    processes share a machine), after joining the process group torchrun prepared (once per process): nccl
    when training on CUDA, gloo on CPU. A world of one process joins nothing."""
    w = world()
    device = resolve_device(device_name)
    if device.type == "cuda" and w.distributed:
        device = torch.device("cuda", w.local_rank)
    if not w.distributed or dist.is_initialized():
        return w, device
    if device.type == "cuda":
        if torch.cuda.device_count() < w.local_size:
            raise ConfigError(f"{w.local_size} processes on this machine but {torch.cuda.device_count()} CUDA "
                              "devices; use --devices <= the GPU count, or --device cpu")
        torch.cuda.set_device(w.local_rank)
    backend = "nccl" if device.type == "cuda" else "gloo"
    # A rank that waits longer than this for the others (one of them died) fails instead of hanging.
    dist.init_process_group(backend, timeout=datetime.timedelta(minutes=int(os.environ.get("DCV_DIST_TIMEOUT_MIN",
                                                                                             30))))
    return w, device


def backend() -> str | None:
    return dist.get_backend() if dist.is_initialized() else None


def broadcast(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (pickled; for small things: a path, a dict of metrics)."""
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_sum(t: Tensor) -> Tensor:
    """Sum ``t`` over the ranks (in place; returns it)."""
    if dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def gather(t: Tensor) -> list[Tensor]:
    """Every rank's ``t`` (same shape on every rank), in rank order."""
    if not dist.is_initialized():
        return [t]
    out = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(out, t)
    return out


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


class StepModule(nn.Module):
    """What DDP wraps: a module whose ``forward(batch)`` is ``task.training_step(batch)``.

    DDP synchronises the gradients of the parameters used inside *its* forward; making that forward the
    whole training step (PyTorch Lightning does the same) means each task's step (``self.model(x)``, a
    detector's ``self.model.loss(...)``, auxiliary heads) runs as written. The parameters are the task
    model's own (registered through ``self.model``); checkpoints keep saving ``task.model``'s state dict.
    """

    def __init__(self, task: Any):
        super().__init__()
        self.model = task.model
        self._task = (task,)  # a tuple, so the task is not registered as a submodule

    def forward(self, batch: Any) -> Any:
        return self._task[0].training_step(batch)


def wrap(task: Any, device: torch.device, find_unused_parameters: bool = False) -> nn.Module:
    """``task``'s training step as a DistributedDataParallel module on ``device``."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    return DDP(StepModule(task), device_ids=ids, find_unused_parameters=find_unused_parameters)


def check_trainable(task: Any, w: World) -> None:
    """Refuse a task DDP cannot train: one that steps its optimizer inside the training step (a GAN)."""
    if w.distributed and getattr(task, "manual_optimization", False):
        raise ConfigError(f"{type(task).__name__} steps its optimizer inside the training step (a GAN's "
                          "alternating updates), which DistributedDataParallel cannot synchronise; train it "
                          "in one process (--devices 1)")


def check_batch_size(batch_size: int, w: World) -> int:
    """The per-rank batch of a global ``batch_size`` split over ``w.size`` processes."""
    if batch_size % w.size:
        raise ConfigError(f"--batch-size {batch_size} is the global batch and must divide evenly over the "
                          f"{w.size} processes; use a multiple of {w.size}")
    return batch_size // w.size


# --- launching ---------------------------------------------------------------------------------------------


def launch(argv: Sequence[str], devices: int, num_nodes: int = 1, device: str = "auto", batch_size: int = 1) -> int:
    """Run ``dcv <argv>`` in ``devices`` processes on this machine (and as one of ``num_nodes`` machines) with
    torch's elastic launcher, as ``torchrun`` would; returns the exit code.

    Several machines use torchrun's static rendezvous: every node runs the same command with ``MASTER_ADDR``
    (the node of rank 0), ``MASTER_PORT`` (default 29500) and its ``NODE_RANK`` (or SLURM's ``SLURM_NODEID``)
    in the environment. A worker's error is printed once, as one line, by this process."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if devices < 1 or num_nodes < 1:
        raise ConfigError("--devices and --num-nodes must be at least 1")
    check_batch_size(batch_size, World(size=devices * num_nodes))
    if device != "cpu" and torch.cuda.is_available() and devices > torch.cuda.device_count():
        raise ConfigError(f"--devices {devices}: this machine has {torch.cuda.device_count()} CUDA devices; "
                          "use at most that many, or --device cpu for CPU processes")
    env = os.environ
    if num_nodes > 1:
        addr = env.get("MASTER_ADDR")
        node_rank = env.get("NODE_RANK", env.get("SLURM_NODEID"))
        if not addr or node_rank is None:
            raise ConfigError(f"--num-nodes {num_nodes}: set MASTER_ADDR (the first node's address) and NODE_RANK "
                              "(0..num_nodes-1; SLURM's SLURM_NODEID is read too) on every node; see the README, "
                              "'Training on several GPUs or machines'")
        rdzv = dict(rdzv_backend="static", rdzv_endpoint=f"{addr}:{env.get('MASTER_PORT', '29500')}",
                    rdzv_configs={"rank": int(node_rank), "timeout": 900},
                    run_id=env.get("SLURM_JOB_ID", "dcvkit"))
    else:
        rdzv = dict(rdzv_backend="c10d", rdzv_endpoint="localhost:0", run_id=str(uuid.uuid4()))
    # The workers run in sessions of their own: Ctrl-C or SIGTERM reach the launcher, which passes the signal
    # on to them (they finish the step, save last.pt and exit) and waits up to 30 s before killing them.
    config = LaunchConfig(min_nodes=num_nodes, max_nodes=num_nodes, nproc_per_node=devices, max_restarts=0,
                          monitor_interval=0.1, start_method="spawn", **rdzv)
    saved = {k: env.get(k) for k in ("OMP_NUM_THREADS", ERROR_DIR_ENV)}
    # torch's launcher logs its own notices (it got a signal, it stops workers); dcvkit prints one line instead
    quiet = [logging.getLogger(name) for name in ["torch.distributed.elastic", *logging.root.manager.loggerDict]
             if name.startswith("torch.distributed.elastic")]
    levels = [q.level for q in quiet]
    with tempfile.TemporaryDirectory(prefix="dcv-dist-") as errors:
        # Processes sharing a CPU share its cores (torchrun would give each one thread).
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // devices)))
        env[ERROR_DIR_ENV] = errors
        for q in quiet:
            q.setLevel(logging.CRITICAL)
        try:
            elastic_launch(config, sys.executable)("-m", "dcvkit", *argv)
            return 0
        except ChildFailedError as e:
            return _report_failure(e, Path(errors))
        except SignalException as e:  # the workers got the signal too, saved and stopped
            return _report_failure(None, Path(errors)) or 128 + int(e.sigval)
        finally:
            for q, level in zip(quiet, levels):
                q.setLevel(level)
            for k, v in saved.items():
                if v is None:
                    env.pop(k, None)
                else:
                    env[k] = v


def _report_failure(e: Any, errors: Path) -> int:
    """One line for a failed launch: the workers' own error messages (each once), else their exit codes
    (``e``: the launcher's ChildFailedError; None: report only what the workers said, 0 if nothing)."""
    messages: dict[str, int] = {}
    for f in sorted(errors.glob("rank*.txt")):
        code, _, text = f.read_text().partition("\n")
        messages.setdefault(text.strip(), int(code))
    if messages:
        for text in messages:
            print(f"error: {text}", file=sys.stderr)
        return max(messages.values())
    if e is None:
        return 0
    codes = {rank: f.exitcode for rank, f in e.failures.items()}
    print(f"error: training processes failed (rank: exit code {codes}); the traceback above is the first "
          "failure's", file=sys.stderr)
    return 1


def report_error(message: str, exit_code: int) -> bool:
    """In a worker started by :func:`launch`, hand a one-line error to the launcher (True); else False."""
    where = os.environ.get(ERROR_DIR_ENV)
    if not where or not world().distributed:
        return False
    Path(where, f"rank{world().rank}.txt").write_text(f"{exit_code}\n{message}")
    return True
