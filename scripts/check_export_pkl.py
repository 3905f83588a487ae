"""Checks latentkit's NVIDIA .pkl exports with NVIDIA's own code (development time, CPU).

Usage: python3 scripts/check_export_pkl.py LATENTKIT MODEL [MODEL ...] -- REPO [REPO ...]

For each MODEL, `latentkit export MODEL out.pkl` is loaded with each REPO's legacy.load_network_pkl
(checkouts of NVlabs/stylegan2-ada-pytorch and NVlabs/stylegan3, read, never copied into latentkit),
which must give G, D and G_ema; G_ema renders seeds 0-3 at psi 1 and 0.7 with constant noise (the
first class for conditional models), compared with `latentkit generate` on the original MODEL (8-bit),
and D scores those images. Needs Debian's python3-torch, python3-numpy, python3-pil and python3-click.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import PIL.Image
import torch


def load(repo, path):
    """The repo's legacy.load_network_pkl on `path` (its own modules, imported fresh)."""
    for name in [m for m in sys.modules if m.split(".")[0] in ("legacy", "dnnlib", "training", "torch_utils")]:
        del sys.modules[name]
    sys.path.insert(0, repo)
    try:
        import legacy
        with open(path, "rb") as f:
            return legacy.load_network_pkl(f)
    finally:
        sys.path.remove(repo)


def check(latentkit, model, repo, work):
    pkl = os.path.join(work, "export.pkl")
    r = subprocess.run([latentkit, "-q", "export", model, pkl], capture_output=True, text=True)
    if r.returncode != 0:
        return f"{os.path.basename(model)}: refused by latentkit export: {r.stderr.strip().splitlines()[-1]}", 0
    data = load(repo, pkl)
    G, D, G_ema = data["G"], data["D"], data["G_ema"]
    worst = 0
    for psi in [1.0, 0.7]:
        out = os.path.join(work, f"psi{psi}")
        label = ["--class", "0"] if G_ema.c_dim else []
        subprocess.run([latentkit, "-q", "generate", "--model", model, "--seeds", "0-3", "--trunc", str(psi), "--outdir", out] + label, check=True)
        z = torch.tensor(np.stack([np.random.RandomState(s).randn(G_ema.z_dim) for s in range(4)]), dtype=torch.float32)
        c = torch.zeros([4, G_ema.c_dim])
        if G_ema.c_dim:
            c[:, 0] = 1
        with torch.no_grad():
            # fp16 blocks (num_fp16_res) run in float32 on the CPU, as latentkit runs them there.
            img = G_ema(z, c, truncation_psi=psi, noise_mode="const", force_fp32=True)
            logits = D(img, c, force_fp32=True)
            G(z, c, noise_mode="const", force_fp32=True)
        ours = np.stack([np.array(PIL.Image.open(os.path.join(out, f"seed{s:04d}.png")).convert("RGB")) for s in range(4)])
        theirs = (img * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        if theirs.shape[-1] == 1:
            theirs = theirs.repeat(3, axis=-1)
        worst = max(worst, int(np.abs(theirs.astype(int) - ours.astype(int)).max()))
    line = (f"{os.path.basename(model)} via {os.path.basename(os.path.normpath(repo))}'s legacy.py: G, D, G_ema "
            f"({G_ema.img_resolution}x{G_ema.img_resolution}, {G_ema.c_dim} classes); images vs latentkit generate (seeds 0-3, "
            f"psi 1 and 0.7): max difference {worst} of 255; D logits finite: {bool(torch.isfinite(logits).all())}")
    return line, worst


def main():
    split = sys.argv.index("--")
    latentkit, models, repos = sys.argv[1], sys.argv[2:split], sys.argv[split + 1:]
    failed = False
    with tempfile.TemporaryDirectory() as work:
        for model in models:
            for repo in repos:
                line, worst = check(latentkit, model, repo, work)
                print(line)
                failed = failed or worst > 1
                if "refused" in line:
                    break
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
