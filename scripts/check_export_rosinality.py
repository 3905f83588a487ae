"""Checks latentkit's rosinality .pt exports with rosinality's own code (development time, CPU).

Usage: python3 scripts/check_export_rosinality.py ROSINALITY_REPO LATENTKIT MODEL [MODEL ...]

For each MODEL, `latentkit export MODEL out.pt` is read with torch.load(weights_only=True); the
repo's Generator (and Discriminator, when the file has `d`) is built with the file's shapes (its
channel table replaced by the widths the file holds, lr_mlp 0.01) and loads the state dicts with
strict=True; it renders seeds 0-3 at psi 1 and 0.7 with the file's constant noise and latent_avg as
the truncation centre, which are compared with `latentkit generate` on the original MODEL (8-bit).
Needs Debian's python3-torch and python3-numpy and python3-pil; ROSINALITY_REPO is a checkout of
rosinality/stylegan2-pytorch (read, never copied into latentkit).
"""
import os
import re
import subprocess
import sys
import tempfile
import types

import numpy as np
import PIL.Image
import torch


def load_repo_model(repo):
    import torch.utils.cpp_extension as ext
    ext.load = lambda *a, **k: None  # its CUDA kernels; the CPU paths are plain PyTorch
    sys.path.insert(0, repo)
    src = open(os.path.join(repo, "model.py")).read()
    src = re.sub(r"self\.channels = \{.*?\}", "self.channels = dict(CHANNELS)", src, count=1, flags=re.S)
    src = re.sub(r"\n(\s+)channels = \{.*?\}", r"\n\1channels = dict(CHANNELS)", src, count=1, flags=re.S)
    module = types.ModuleType("rosinality_model")
    module.CHANNELS = {}
    exec(compile(src, "model.py", "exec"), module.__dict__)
    return module


def shapes(ckpt):
    g = ckpt["g_ema"]
    n_mlp = len([k for k in g if re.fullmatch(r"style\.\d+\.weight", k)])
    style_dim = g["style.1.weight"].shape[0]
    blocks = len([k for k in g if re.fullmatch(r"convs\.\d+\.conv\.weight", k)]) // 2
    size = 4 << blocks
    channels = {4: g["input.input"].shape[1]}
    for j in range(blocks):
        channels[8 << j] = g[f"convs.{2 * j + 1}.conv.weight"].shape[1]
    return size, style_dim, n_mlp, channels


def images8(x):
    return (x * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def check(repo_model, latentkit, model, work):
    pt = os.path.join(work, "export.pt")
    subprocess.run([latentkit, "-q", "export", model, pt], check=True)
    ckpt = torch.load(pt, map_location="cpu", weights_only=True)
    size, style_dim, n_mlp, channels = shapes(ckpt)
    repo_model.CHANNELS.clear()
    repo_model.CHANNELS.update(channels)
    G = repo_model.Generator(size, style_dim, n_mlp).eval()
    G.load_state_dict(ckpt["g_ema"], strict=True)
    report = [f"{os.path.basename(model)}: {size}x{size}, style_dim {style_dim}, n_mlp {n_mlp}, keys {sorted(ckpt)}"]
    if "g" in ckpt:
        repo_model.Generator(size, style_dim, n_mlp).load_state_dict(ckpt["g"], strict=True)
    if "d" in ckpt:
        repo_model.Discriminator(size).load_state_dict(ckpt["d"], strict=True)
    worst = 0
    for psi in [1.0, 0.7]:
        out = os.path.join(work, f"psi{psi}")
        subprocess.run([latentkit, "-q", "generate", "--model", model, "--seeds", "0-3", "--trunc", str(psi), "--outdir", out], check=True)
        z = torch.tensor(np.stack([np.random.RandomState(s).randn(style_dim) for s in range(4)]), dtype=torch.float32)
        with torch.no_grad():
            img, _ = G([z], truncation=psi, truncation_latent=ckpt["latent_avg"].reshape(1, -1), randomize_noise=False)
        ours = np.stack([np.array(PIL.Image.open(os.path.join(out, f"seed{s:04d}.png")).convert("RGB")) for s in range(4)])
        worst = max(worst, int(np.abs(images8(img).astype(int) - ours.astype(int)).max()))
    report.append(f"  strict load of {', '.join(k for k in ('g_ema', 'g', 'd') if k in ckpt)}: ok; images vs latentkit generate "
                  f"(seeds 0-3, psi 1 and 0.7): max difference {worst} of 255")
    return report, worst


def main():
    repo, latentkit, models = sys.argv[1], sys.argv[2], sys.argv[3:]
    repo_model = load_repo_model(repo)
    failed = False
    with tempfile.TemporaryDirectory() as work:
        for model in models:
            report, worst = check(repo_model, latentkit, model, work)
            print("\n".join(report))
            failed = failed or worst > 1
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
