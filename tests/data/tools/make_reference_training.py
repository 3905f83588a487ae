"""Makes tests/data/reference_training/: what stylegan2-ada-pytorch's own training, augmentation and
projection code computes for a small network, so that latentkit's trainer, ADA pipeline and projector
can be checked against it.

Usage: python3 make_reference_training.py ADA_REPO PHOTOS_DIR OUT_DIR

ADA_REPO is a checkout of NVlabs/stylegan2-ada-pytorch (read for its code; nothing of it is committed
here), PHOTOS_DIR is opencv-doc's examples/data folder. Runs on the CPU with Debian's python3-torch,
python3-numpy, python3-scipy, python3-pil and python3-click. README.md beside the output says what
each tensor is.
"""
import contextlib
import copy
import io
import json
import os
import pickle
import sys
import types

import numpy as np
import torch
import PIL.Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_variants import perturb, placeholder_sources, write_safetensors  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "scripts"))
from check_resume_pkl import TorchOnCpu  # noqa: E402  (projector.py asks for 'cuda' by name)

Z_DIM, W_DIM, RES = 32, 32, 16


def rs_z(seeds, z_dim=Z_DIM):
    return torch.tensor(np.stack([np.random.RandomState(s).randn(z_dim) for s in seeds]), dtype=torch.float32)


def make_networks(networks):
    torch.manual_seed(16)
    g_kwargs = dict(z_dim=Z_DIM, c_dim=0, w_dim=W_DIM, img_resolution=RES, img_channels=3,
                    mapping_kwargs=dict(num_layers=2),
                    synthesis_kwargs=dict(channel_base=512, channel_max=32, num_fp16_res=0, conv_clamp=256))
    d_kwargs = dict(c_dim=0, img_resolution=RES, img_channels=3, channel_base=512, channel_max=32, num_fp16_res=0,
                    conv_clamp=256, epilogue_kwargs=dict(mbstd_group_size=2))
    G = networks.Generator(**g_kwargs)
    D = networks.Discriminator(**d_kwargs)
    G_ema = networks.Generator(**g_kwargs)
    for k, net in enumerate([G, D, G_ema]):
        perturb(net, 60 + k)
    return G, D, G_ema


class ConstNoiseSynthesis(torch.nn.Module):
    """The synthesis network with the model's constant noise, so that the vectors are deterministic."""

    def __init__(self, synthesis):
        super().__init__()
        self.synthesis = synthesis
        self.inputs = []

    def forward(self, ws):
        self.inputs.append(ws.detach().clone())
        return self.synthesis(ws, noise_mode="const")


@contextlib.contextmanager
def recording(module, name, log):
    """Records what module.name returns while the block runs."""
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        out = original(*args, **kwargs)
        log.append(out.detach().clone() if isinstance(out, torch.Tensor) else [t.detach().clone() for t in out])
        return out

    setattr(module, name, wrapper)
    try:
        yield
    finally:
        setattr(module, name, original)


def path_length_case(loss_mod, G, D, out, info):
    """Greg of StyleGAN2Loss with style mixing (the cutoff is whatever its draw gives for the seed)."""
    G = copy.deepcopy(G).train()
    syn = ConstNoiseSynthesis(G.synthesis)
    loss = loss_mod.StyleGAN2Loss(device=torch.device("cpu"), G_mapping=G.mapping, G_synthesis=syn, D=D,
                                  style_mixing_prob=1.0, pl_batch_shrink=2, pl_decay=0.01, pl_weight=2)
    loss.pl_mean.fill_(0.3)
    z = rs_z([5, 6, 7, 8])
    c = torch.zeros([4, 0])
    draws, grads = [], []
    torch.manual_seed(21)
    with recording(torch, "randn_like", draws), recording(torch.autograd, "grad", grads):
        loss.accumulate_gradients("Greg", real_img=None, real_c=None, gen_z=z, gen_c=c, sync=True, gain=4)
    mixed = syn.inputs[0]
    plain = G.mapping(z[:2], c[:2], skip_w_avg_update=True).detach()
    differs = (mixed - plain).abs().amax(dim=(0, 2)) > 0
    cutoff = int(differs.nonzero()[0]) if differs.any() else mixed.shape[1]
    info["pl"] = {"gain": 4, "pl_weight": 2, "pl_decay": 0.01, "pl_mean_before": 0.3, "cutoff": cutoff,
                  "batch": 2, "noise_mode": "const"}
    out["pl.z"] = z[:2]
    out["pl.mix_z"] = draws[0]
    out["pl.noise"] = draws[1]
    out["pl.ws_mixed"] = mixed
    out["pl.grads"] = grads[0][0]
    out["pl.lengths"] = grads[0][0].square().sum(2).mean(1).sqrt()
    out["pl.pl_mean_after"] = loss.pl_mean.reshape([1])
    for name, p in G.named_parameters():
        if p.grad is not None:
            out["pl.G_grad." + name] = p.grad


def w_avg_case(loss_mod, G, D, out, info):
    """w_avg through one minibatch of Gmain, Greg and Dmain (style mixing on, as in training)."""
    G = copy.deepcopy(G).train()
    syn = ConstNoiseSynthesis(G.synthesis)
    loss = loss_mod.StyleGAN2Loss(device=torch.device("cpu"), G_mapping=G.mapping, G_synthesis=syn, D=D,
                                  style_mixing_prob=0.9, pl_batch_shrink=2, pl_decay=0.01, pl_weight=2)
    c = torch.zeros([4, 0])
    reals = G.synthesis(G.mapping(rs_z([40, 41, 42, 43]), c, skip_w_avg_update=True), noise_mode="const").detach()
    out["wavg.before"] = G.mapping.w_avg.clone()
    torch.manual_seed(22)
    for k, phase in enumerate(["Gmain", "Greg", "Dmain"]):
        z = rs_z([10 * k + 1, 10 * k + 2, 10 * k + 3, 10 * k + 4])
        out[f"wavg.z_{phase}"] = z
        loss.accumulate_gradients(phase, real_img=reals, real_c=c, gen_z=z, gen_c=c, sync=True, gain=1)
        out[f"wavg.after_{phase}"] = G.mapping.w_avg.clone()
    info["wavg"] = {"w_avg_beta": G.mapping.w_avg_beta, "pl_batch_shrink": 2, "phases": ["Gmain", "Greg", "Dmain"]}


def grad_scale_case(loss_mod, G, D, out, info):
    """Gmain, then Dmain, over two accumulation rounds of 2 images with gain 1, as training_loop.py
    drives them (only the phase's module requires gradients)."""
    G, D = copy.deepcopy(G).train(), copy.deepcopy(D).train()
    syn = ConstNoiseSynthesis(G.synthesis)
    loss = loss_mod.StyleGAN2Loss(device=torch.device("cpu"), G_mapping=G.mapping, G_synthesis=syn, D=D,
                                  style_mixing_prob=0, r1_gamma=0, pl_weight=0)
    c = torch.zeros([2, 0])
    zs = [rs_z([50, 51]), rs_z([52, 53])]
    with torch.no_grad():
        reals = [G.synthesis(G.mapping(rs_z([60 + k, 70 + k]), c, skip_w_avg_update=True), noise_mode="const") for k in range(2)]
    for k in range(2):
        out[f"gscale.z{k}"] = zs[k]
        out[f"gscale.real{k}"] = reals[k]
    for phase, name, module in [("Gmain", "G", G), ("Dmain", "D", D)]:
        G.requires_grad_(module is G)
        D.requires_grad_(module is D)
        for r in range(2):
            loss.accumulate_gradients(phase, real_img=reals[r], real_c=c, gen_z=zs[r], gen_c=c, sync=(r == 1), gain=1)
        for pname, p in module.named_parameters():
            if p.grad is not None:
                out[f"gscale.{name}_grad.{pname}"] = p.grad
    info["gscale"] = {"rounds": 2, "batch_gpu": 2, "gain": 1, "noise_mode": "const", "style_mixing_prob": 0}


def augment_cases(augment, images, out, info):
    """The ADA pipeline for fixed parameters (debug_percentile) and for a seed."""
    geom = dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1)
    color = dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)
    out["aug.input"] = images
    cases = {"bg": (geom, [0.2, 0.45, 0.7, 0.95]),
             "xflip": (dict(xflip=1), [0.75]),
             "rot90": (dict(rotate90=1), [0.3, 0.6, 0.9]),
             "xint": (dict(xint=1), [0.95, 0.1]),
             "scale": (dict(scale=1), [0.8]),
             "rotate": (dict(rotate=1), [0.6]),
             "aniso": (dict(aniso=1), [0.3]),
             "xfrac": (dict(xfrac=1), [0.8]),
             "bgc": (dict(geom, **color), [0.65])}
    info["augment"] = {"percentile_cases": {}}
    for name, (kwargs, percentiles) in cases.items():
        pipe = augment.AugmentPipe(**kwargs)
        pipe.p.copy_(torch.ones([]))
        info["augment"]["percentile_cases"][name] = {"kwargs": kwargs, "percentiles": percentiles}
        for pct in percentiles:
            with torch.no_grad():
                out[f"aug.{name}_pct{pct}"] = pipe(images, debug_percentile=pct)
    pipe = augment.AugmentPipe(**geom, **color)
    pipe.p.copy_(torch.full([], 0.5))
    torch.manual_seed(11)
    with torch.no_grad():
        out["aug.bgc_seed11_p0.5"] = pipe(images)
    info["augment"]["seeded"] = {"kwargs": dict(geom, **color), "p": 0.5, "seed": 11,
                                 "note": "torch.manual_seed(11), then the pipeline's own draws"}


def stand_in_vgg16():
    """A TorchScript module with vgg16.pt's call interface: normalised 4x4-pooled pixels."""

    class Vgg(torch.nn.Module):
        def forward(self, img, resize_images: bool = True, return_lpips: bool = False):
            f = torch.nn.functional.avg_pool2d(img / 255.0, 4).flatten(1)
            return f / f.square().sum(1, keepdim=True).add(1e-8).sqrt()

    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(Vgg()), buf)
    return buf.getvalue()


def projection_case(ada_repo, G_ema, photo, out_dir, info):
    """projector.py's run_projection (its own image preparation and output), 40 steps, seed 303."""
    sys.modules.setdefault("imageio", types.ModuleType("imageio"))
    import dnnlib
    import legacy
    import projector
    vgg = stand_in_vgg16()
    dnnlib.util.open_url = lambda url, *a, **k: io.BytesIO(vgg if "vgg16" in url else b"")
    legacy.load_network_pkl = lambda f: dict(G_ema=copy.deepcopy(G_ema))
    projector.torch = TorchOnCpu()
    proj = os.path.join(out_dir, "projection")
    projector.run_projection.callback(network_pkl="train16.pkl", target_fname=photo, outdir=proj, save_video=False,
                                      seed=303, num_steps=40)
    info["projection"] = {"photo": os.path.basename(photo), "steps": 40, "seed": 303,
                          "vgg16": "stand-in: avg_pool2d(img / 255, 4), flattened, L2-normalised"}


def resample_cases(photos, out_dir, info):
    """Pillow's anti-aliased Lanczos (what the reference dataset tool and projector call)."""
    d = os.path.join(out_dir, "resample")
    os.makedirs(d, exist_ok=True)
    cases = [("graf1.png", "RGB", (100, 77)), ("graf1.png", "RGB", (33, 33)), ("box.png", "L", (500, 300)),
             ("box.png", "L", (61, 45)), ("HappyFish.jpg", "RGB", (400, 123))]
    info["resample"] = []
    for name, mode, size in cases:
        src = PIL.Image.open(os.path.join(photos, name)).convert(mode)
        if name.endswith(".jpg"):
            src.save(os.path.join(d, "HappyFish.png"))  # decoded once here, so JPEG decoders cannot differ
            name = "HappyFish.png"
        out_name = f"{os.path.splitext(name)[0]}_{size[0]}x{size[1]}.png"
        src.resize(size, PIL.Image.LANCZOS).save(os.path.join(d, out_name))
        info["resample"].append({"source": name, "mode": mode, "size": list(size), "file": out_name})


def main():
    ada_repo, photos, out_dir = sys.argv[1:4]
    sys.path.insert(0, ada_repo)
    from training import networks, augment
    from training import loss as loss_mod
    from torch_utils import training_stats  # noqa: F401 (reports go nowhere without a collector)
    os.makedirs(out_dir, exist_ok=True)
    G, D, G_ema = make_networks(networks)
    out, info = {}, {"torch": torch.__version__, "numpy": np.__version__, "PIL": PIL.__version__,
                     "networks": "train16.pkl: G, D, G_ema, z_dim 32, w_dim 32, 16x16 RGB, 2 mapping layers, "
                                 "channel_base 512, channel_max 32, conv_clamp 256, mbstd group 2"}
    path_length_case(loss_mod, G, D, out, info)
    w_avg_case(loss_mod, G, D, out, info)
    grad_scale_case(loss_mod, G, D, out, info)
    with torch.no_grad():
        images = G_ema.synthesis(G_ema.mapping(rs_z([0, 1, 2, 3]), None), noise_mode="const").clamp(-1, 1)
    augment_cases(augment, images, out, info)
    projection_case(ada_repo, G_ema, os.path.join(photos, "graf1.png"), out_dir, info)
    resample_cases(photos, out_dir, info)
    write_safetensors(os.path.join(out_dir, "expected.safetensors"), out)
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump(info, f, indent=1)
    placeholder_sources(G, D, G_ema)
    with open(os.path.join(out_dir, "train16.pkl"), "wb") as f:
        pickle.dump(dict(G=G, D=D, G_ema=G_ema, augment_pipe=None, training_set_kwargs=None), f, protocol=4)


if __name__ == "__main__":
    main()
