"""Resumes stylegan2-ada-pytorch's own training loop from a latentkit .pkl export, on the CPU
(development time).

Usage: python3 scripts/check_resume_pkl.py ADA_REPO LATENTKIT MODEL DATA.zip OUTDIR

`latentkit export MODEL OUTDIR/export.pkl`, then the repo's train.py set-up (cfg auto, 1 GPU, batch 8,
no metrics, --fp32 and --aug noaug: fp16 convolutions and its twice-differentiable grid sampler exist
for CUDA only) and training/training_loop.py with resume=that file for 16 images (two ticks), its CUDA
requests pointed at the CPU (the loop names 'cuda' itself; its ops have CPU paths). Prints the
loop's progress, and how far the resumed run's first snapshot's G_ema is from the exported one
(small: the run started from it, with no EMA ramp-up). MODEL must have the architecture of the
repo's cfg auto at the data's resolution (train.py cannot set channel widths), e.g. a
`latentkit train --cfg auto` snapshot. Needs Debian's python3-torch, python3-numpy, python3-pil,
python3-scipy and python3-click.
"""
import glob
import os
import pickle
import subprocess
import sys
import types

import torch


class Events:
    """torch.cuda's timing events and memory statistics, as no-ops."""

    class Event:
        def __init__(self, *args, **kwargs):
            pass

        def record(self, *args):
            pass

        def synchronize(self):
            pass

        def elapsed_time(self, other):
            return 0.0

    @staticmethod
    def current_stream(*args):
        return None

    @staticmethod
    def max_memory_allocated(*args):
        return 0

    @staticmethod
    def reset_peak_memory_stats(*args):
        pass


class TorchOnCpu(types.ModuleType):
    """torch, with torch.device(...) the CPU and torch.cuda's events as no-ops."""

    cuda = Events

    def __init__(self):
        super().__init__("torch")

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def device(*args, **kwargs):
        return torch.device("cpu")


def main():
    repo, latentkit, model, data, outdir = sys.argv[1:6]
    os.makedirs(outdir, exist_ok=True)
    exported = os.path.join(outdir, "export.pkl")
    subprocess.run([latentkit, "-q", "export", model, exported], check=True)
    sys.path.insert(0, repo)
    import train
    from training import training_loop
    import legacy
    torch.Tensor.pin_memory = lambda self, *a, **k: self
    training_loop.torch = TorchOnCpu()
    _, args = train.setup_training_loop_kwargs(gpus=1, snap=1, metrics=[], data=data, kimg=1, batch=8, resume=exported, fp32=True, aug="noaug",
                                               cfg="auto", workers=1)
    args.total_kimg = 0.016  # train.py takes whole kimg only
    args.run_dir = os.path.join(outdir, "run")
    os.makedirs(args.run_dir, exist_ok=True)
    training_loop.training_loop(rank=0, **args)
    snapshots = sorted(glob.glob(os.path.join(args.run_dir, "network-snapshot-*.pkl")))
    with open(exported, "rb") as f:
        start = legacy.load_network_pkl(f)["G_ema"]
    with open(snapshots[0], "rb") as f:
        first = pickle.load(f)["G_ema"]
    diff = max((a - b).abs().max().item() for a, b in zip(start.parameters(), first.parameters()))
    scale = max(a.abs().max().item() for a in start.parameters())
    print(f"resumed: {len(snapshots)} snapshots ({', '.join(os.path.basename(s) for s in snapshots)}); first snapshot's G_ema "
          f"parameters differ from the exported ones by at most {diff:.3g} (largest parameter {scale:.3g})")


if __name__ == "__main__":
    main()
