"""Makes tests/data/variants/: model files of the kinds in formats/, in other configurations, with
the outputs the reference implementations give for them.

Usage: python3 make_variants.py ADA_REPO SG3_REPO ROSINALITY_REPO OUT_DIR

The three arguments are checkouts of NVlabs/stylegan2-ada-pytorch, NVlabs/stylegan3 and
rosinality/stylegan2-pytorch (read for their network code; nothing of them is committed here). Runs
on the CPU with Debian's python3-torch and python3-numpy. Every parameter and buffer is perturbed
away from its initial value, so a wrong gain or a skipped buffer shows.

- tf_cond16.pkl: a TensorFlow-era (G, D, Gs) pickle of a conditional StyleGAN2-ADA network (3
  classes, 'resnet' generator with its flipped Skip layers, 'skip' discriminator with a label
  mapping layer). Its variables are random in the TensorFlow layout; the expected outputs come from
  stylegan2-ada-pytorch's own legacy.py conversion of the file.
- sg3sg2_cond16.pkl: a stylegan3-repo networks_stylegan2 snapshot, conditional (5 classes),
  'orig' generator, 'skip' discriminator, conv_clamp absent (the repo's default 256 applies).
- sg3r_cond64.pkl: a stylegan3-repo StyleGAN3-R snapshot, conditional (4 classes), 64x64, 8 layers,
  num_critical 1, written with protocol 5 (numpy's own _frombuffer arrays in the module attributes).
  sg3_filters.expected.safetensors holds the up/down filters the stylegan3 repo designs (scipy) for
  an unperturbed -T and -R network of that shape, to check latentkit's own filter design.
- rosi_64.pt: a rosinality checkpoint at 64x64, channel_multiplier 1 and the repo's channel table
  divided by 32, n_mlp 4, with g_ema and d only and no latent_avg: the truncation centre is the mean
  of W over numpy RandomState(123).randn(10000, latent), as latentkit computes it then.
"""
import argparse
import importlib.util
import json
import os
import pickle
import re
import struct
import sys
import types

import numpy as np
import torch

SEEDS = [0, 1, 42, 1000]


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name].detach().cpu().numpy().astype(np.float32))
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        blobs.append(a.tobytes())
        offset += a.nbytes
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def zs(z_dim):
    return torch.tensor(np.stack([np.random.RandomState(s).randn(z_dim) for s in SEEDS]), dtype=torch.float32)


def labels(c_dim):
    c = torch.zeros(len(SEEDS), c_dim)
    for i in range(len(SEEDS)):
        c[i, i % c_dim] = 1
    return c


def perturb(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            if t.is_floating_point():
                t.add_(torch.randn(t.shape, generator=g) * 0.1 * (t.abs().mean() + 0.1))


def ada_outputs(G_ema, G, D, c_dim):
    z, c = zs(G_ema.z_dim), labels(c_dim) if c_dim else None
    out = {"z": z}
    if c is not None:
        out["c"] = c
    for psi in [1.0, 0.7]:
        ws = G_ema.mapping(z, c, truncation_psi=psi)
        out[f"ws_psi{psi}"] = ws
        out[f"img_psi{psi}_const"] = G_ema.synthesis(ws, noise_mode="const")
    out["ws_psi0.5_cutoff2"] = G_ema.mapping(z, c, truncation_psi=0.5, truncation_cutoff=2)
    out["img_psi1.0_nonoise"] = G_ema.synthesis(out["ws_psi1.0"], noise_mode="none")
    out["D_logits"] = D(out["img_psi1.0_const"], c)
    out["G_img_psi1.0"] = G(z, c, noise_mode="const")
    return out


# ---------------------------------------------------------------------------------------------
# TensorFlow-era pickle of a conditional network, converted by legacy.py.

def tf_network_class():
    """A stand-in for dnnlib.tflib.network.Network that pickles as it (NEWOBJ + BUILD of its dict)."""
    for name in ["dnnlib.tflib", "dnnlib.tflib.network"]:
        sys.modules.setdefault(name, types.ModuleType(name))

    class Network:
        def __setstate__(self, state):
            self.__dict__.update(state)

        def __getstate__(self):
            return self.__dict__

    Network.__module__, Network.__qualname__ = "dnnlib.tflib.network", "Network"
    sys.modules["dnnlib.tflib.network"].Network = Network
    return Network


def tf_net(Network, name, static_kwargs, variables, components=None):
    n = Network()
    n.__setstate__(dict(version=5, name=name, static_kwargs=static_kwargs, components=components or {},
                        build_module_src="(placeholder: a TensorFlow network's build module)",
                        build_func_name="training.networks." + name, variables=list(variables.items())))
    return n


def tf_generator_variables(rng, kw):
    res, z, w, c = kw["resolution"], kw["latent_size"], kw["dlatent_size"], kw["label_size"]
    ch = lambda r: min(kw["fmap_base"] * 2 // r, kw["fmap_max"])
    f = lambda *shape: rng.randn(*shape).astype(np.float32) * 0.5
    mapping = {"LabelEmbed/weight": f(c, w), "LabelEmbed/bias": f(w)}
    for i in range(kw["mapping_layers"]):
        mapping[f"Dense{i}/weight"] = f(z + w if i == 0 else w, w)
        mapping[f"Dense{i}/bias"] = f(w)
    syn, noise = {}, 0
    r = 4
    while r <= res:
        layers = ["Conv"] if r == 4 else ["Conv0_up", "Conv1"]
        cin = ch(r) if r == 4 else ch(r // 2)
        for layer in layers:
            syn[f"noise{noise}"] = f(1, 1, r, r)
            noise += 1
            syn[f"{r}x{r}/{layer}/weight"] = f(3, 3, cin, ch(r))
            syn[f"{r}x{r}/{layer}/bias"] = f(ch(r))
            syn[f"{r}x{r}/{layer}/mod_weight"] = f(w, cin)
            syn[f"{r}x{r}/{layer}/mod_bias"] = f(cin)
            syn[f"{r}x{r}/{layer}/noise_strength"] = np.float32(rng.randn())
            cin = ch(r)
        if r == 4:
            syn["4x4/Const/const"] = f(1, ch(4), 4, 4)
        else:
            syn[f"{r}x{r}/Skip/weight"] = f(1, 1, ch(r // 2), ch(r))
        r *= 2
    syn[f"{res}x{res}/ToRGB/weight"] = f(1, 1, ch(res), 3)
    syn[f"{res}x{res}/ToRGB/bias"] = f(3)
    syn[f"{res}x{res}/ToRGB/mod_weight"] = f(w, ch(res))
    syn[f"{res}x{res}/ToRGB/mod_bias"] = f(ch(res))
    return mapping, syn, {"dlatent_avg": f(w)}


def tf_discriminator_variables(rng, kw):
    res = kw["resolution"]
    ch = lambda r: min(kw["fmap_base"] * 2 // r, kw["fmap_max"])
    f = lambda *shape: rng.randn(*shape).astype(np.float32) * 0.5
    v = {}
    r = res
    while r > 4:
        v[f"{r}x{r}/FromRGB/weight"] = f(1, 1, 3, ch(r))
        v[f"{r}x{r}/FromRGB/bias"] = f(ch(r))
        v[f"{r}x{r}/Conv0/weight"] = f(3, 3, ch(r), ch(r))
        v[f"{r}x{r}/Conv0/bias"] = f(ch(r))
        v[f"{r}x{r}/Conv1_down/weight"] = f(3, 3, ch(r), ch(r // 2))
        v[f"{r}x{r}/Conv1_down/bias"] = f(ch(r // 2))
        r //= 2
    cmap = kw["mapping_fmaps"]
    v.update({"4x4/FromRGB/weight": f(1, 1, 3, ch(4)), "4x4/FromRGB/bias": f(ch(4)),
              "4x4/Conv/weight": f(3, 3, ch(4) + 1, ch(4)), "4x4/Conv/bias": f(ch(4)),
              "4x4/Dense0/weight": f(ch(4) * 16, ch(4)), "4x4/Dense0/bias": f(ch(4)),
              "Output/weight": f(ch(4), cmap), "Output/bias": f(cmap),
              "LabelEmbed/weight": f(kw["label_size"], cmap), "LabelEmbed/bias": f(cmap),
              "Mapping0/weight": f(cmap, cmap), "Mapping0/bias": f(cmap)})
    return v


def make_tf(ada_repo, out):
    sys.path.insert(0, ada_repo)
    Network = tf_network_class()
    if "click" not in sys.modules:  # legacy.py's command line only; its converter does not use it
        click = types.ModuleType("click")
        click.command = lambda *a, **k: (lambda f: f)
        click.option = lambda *a, **k: (lambda f: f)
        sys.modules["click"] = click
    import legacy  # stylegan2-ada-pytorch's converter
    g_kw = dict(num_channels=3, resolution=16, label_size=3, latent_size=32, dlatent_size=40, fmap_base=256, fmap_max=48,
                mapping_layers=2, architecture="resnet", num_fp16_res=0, truncation_psi=0.7)
    d_kw = dict(num_channels=3, resolution=16, label_size=3, fmap_base=256, fmap_max=48, architecture="skip",
                mbstd_group_size=2, mapping_layers=1, mapping_fmaps=32, conv_clamp=256)
    nets = []
    for name, seed in [("G", 1), ("D", 2), ("Gs", 3)]:
        rng = np.random.RandomState(seed)
        if name == "D":
            nets.append(tf_net(Network, "D", d_kw, tf_discriminator_variables(rng, d_kw)))
        else:
            mapping, syn, top = tf_generator_variables(rng, g_kw)
            comps = {"mapping": tf_net(Network, "G_mapping", {}, mapping), "synthesis": tf_net(Network, "G_synthesis", {}, syn)}
            nets.append(tf_net(Network, name, g_kw, top, comps))
    path = os.path.join(out, "tf_cond16.pkl")
    with open(path, "wb") as f:
        pickle.dump(tuple(nets), f, protocol=4)
    with open(path, "rb") as f:
        data = legacy.load_network_pkl(f)
    write_safetensors(os.path.join(out, "tf_cond16.expected.safetensors"), ada_outputs(data["G_ema"], data["G"], data["D"], 3))
    sys.path.remove(ada_repo)
    for m in [m for m in sys.modules if m.split(".")[0] in ("training", "torch_utils", "legacy")]:
        del sys.modules[m]
    del sys.modules["dnnlib"]


# ---------------------------------------------------------------------------------------------
# stylegan3-repo networks_stylegan2 snapshot.

def placeholder_sources(*networks):
    """As in formats/: a neutral placeholder instead of the module source a real snapshot carries."""
    for net in networks:
        for module in net.modules():
            if hasattr(type(module), "_orig_module_src"):
                type(module)._orig_module_src = "(placeholder: the source of the module that defines this class)"


def make_sg3(sg3_repo, out):
    sys.path.insert(0, sg3_repo)
    from training import networks_stylegan3 as nets3
    from training import networks_stylegan2 as nets2
    shape = dict(z_dim=24, w_dim=32, img_resolution=64, img_channels=3, mapping_kwargs=dict(num_layers=3),
                 channel_base=1024, channel_max=40, num_layers=8, num_critical=1, margin_size=6)
    filters = {}
    for kind, extra in [("t", {}), ("r", dict(conv_kernel=1, use_radial_filters=True))]:
        torch.manual_seed(3)
        G = nets3.Generator(c_dim=0, **shape, **extra)
        for name, buf in G.synthesis.named_buffers():
            if name.endswith("_filter"):
                filters[f"{kind}.{name}"] = buf
    write_safetensors(os.path.join(out, "sg3_filters.expected.safetensors"), filters)

    kwargs = dict(c_dim=4, **shape, conv_kernel=1, use_radial_filters=True, magnitude_ema_beta=0.99)
    torch.manual_seed(4)
    G, G_ema = nets3.Generator(**kwargs).eval(), nets3.Generator(**kwargs).eval()
    D = nets2.Discriminator(c_dim=4, img_resolution=64, img_channels=3, channel_base=1024, channel_max=40,
                            block_kwargs={}, mapping_kwargs={}, epilogue_kwargs=dict(mbstd_group_size=4)).eval()
    for k, net in enumerate([G, G_ema, D]):
        perturb(net, 30 + k)
    with torch.no_grad():
        z, c = zs(24), labels(4)
        expected = {"z": z, "c": c}
        for psi in [1.0, 0.7]:
            expected[f"ws_psi{psi}"] = G_ema.mapping(z, c, truncation_psi=psi)
            expected[f"img_psi{psi}"] = G_ema.synthesis(expected[f"ws_psi{psi}"])
        expected["ws_psi0.5_cutoff2"] = G_ema.mapping(z, c, truncation_psi=0.5, truncation_cutoff=2)
        m = np.linalg.inv(np.array([[np.cos(0.3), np.sin(0.3), -0.2], [-np.sin(0.3), np.cos(0.3), 0.1], [0, 0, 1]]))
        saved = G_ema.synthesis.input.transform.clone()
        G_ema.synthesis.input.transform.copy_(torch.from_numpy(m))
        expected["img_psi0.7_transformed"] = G_ema.synthesis(expected["ws_psi0.7"])
        G_ema.synthesis.input.transform.copy_(saved)
        expected["D_logits"] = D(expected["img_psi1.0"], c)
        expected["G_img_psi1.0"] = G(z, c)
    placeholder_sources(G, G_ema, D)
    with open(os.path.join(out, "sg3r_cond64.pkl"), "wb") as f:
        pickle.dump(dict(G=G, D=D, G_ema=G_ema, augment_pipe=None, training_set_kwargs=None), f, protocol=5)
    write_safetensors(os.path.join(out, "sg3r_cond64.expected.safetensors"), expected)
    sys.path.remove(sg3_repo)


def make_sg3sg2(sg3_repo, out):
    sys.path.insert(0, sg3_repo)
    from training import networks_stylegan2 as nets
    g_kwargs = dict(z_dim=32, c_dim=5, w_dim=40, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=3),
                    channel_base=512, channel_max=48, architecture="orig", fused_modconv_default=True)
    d_kwargs = dict(c_dim=5, img_resolution=16, img_channels=3, channel_base=512, channel_max=48, architecture="skip",
                    block_kwargs={}, mapping_kwargs={}, epilogue_kwargs=dict(mbstd_group_size=2))
    torch.manual_seed(5)
    G = nets.Generator(**g_kwargs).eval()
    G_ema = nets.Generator(**g_kwargs).eval()
    D = nets.Discriminator(**d_kwargs).eval()
    for k, net in enumerate([G, G_ema, D]):
        perturb(net, 10 + k)
    with torch.no_grad():
        expected = ada_outputs(G_ema, G, D, 5)
    placeholder_sources(G, D)
    with open(os.path.join(out, "sg3sg2_cond16.pkl"), "wb") as f:
        pickle.dump(dict(G=G, D=D, G_ema=G_ema, augment_pipe=None, training_set_kwargs=None), f, protocol=4)
    write_safetensors(os.path.join(out, "sg3sg2_cond16.expected.safetensors"), expected)
    sys.path.remove(sg3_repo)


# ---------------------------------------------------------------------------------------------
# rosinality checkpoint.

def load_rosinality_model(repo):
    import torch.utils.cpp_extension as ext
    ext.load = lambda *a, **k: None  # the CUDA kernels; the CPU paths are pure PyTorch
    sys.path.insert(0, repo)
    src = open(os.path.join(repo, "model.py")).read()
    src = re.sub(r"(channels = \{)(.*?)(\})",
                 lambda m: m.group(1) + re.sub(r"(\d+): ([^,\n]+),", r"\1: (\2) // 32,", m.group(2)) + m.group(3), src, flags=re.S)
    module = types.ModuleType("rosinality_model")
    exec(compile(src, "model.py", "exec"), module.__dict__)
    return module


def make_rosinality(repo, out):
    model = load_rosinality_model(repo)
    torch.manual_seed(7)
    g_ema = model.Generator(64, 48, 4, channel_multiplier=1).eval()
    d = model.Discriminator(64, channel_multiplier=1).eval()
    perturb(g_ema, 20)
    perturb(d, 21)
    with torch.no_grad():
        z = zs(48)
        mean = g_ema.style(torch.tensor(np.random.RandomState(123).randn(10000, 48), dtype=torch.float32)).mean(0)
        expected = {"z": z, "latent_avg": mean}
        for psi in [1.0, 0.7]:
            img, ws = g_ema([z], truncation=psi, truncation_latent=mean, randomize_noise=False, return_latents=True)
            expected[f"ws_psi{psi}"], expected[f"img_psi{psi}_const"] = ws, img
        expected["D_logits"] = d(expected["img_psi1.0_const"])
    args = argparse.Namespace(size=64, latent=48, n_mlp=4, channel_multiplier=1, batch=8, lr=0.002, r1=10.0, augment=False)
    torch.save({"g_ema": g_ema.state_dict(), "d": d.state_dict(), "args": args}, os.path.join(out, "rosi_64.pt"))
    write_safetensors(os.path.join(out, "rosi_64.expected.safetensors"), expected)


def main():
    ada, sg3, rosi, out = sys.argv[1:5]
    os.makedirs(out, exist_ok=True)
    make_tf(ada, out)
    make_sg3sg2(sg3, out)
    make_sg3(sg3, out)
    make_rosinality(rosi, out)


if __name__ == "__main__":
    main()
