"""Makes the damaged model files of tests/data/hostile/ from the golden formats files.

Usage: python3 make_hostile.py FORMATS_DIR OUT_DIR   (Debian's python3-numpy and python3-torch)

TensorFlow-era pickles are read with make_variants.py's stand-in for dnnlib.tflib.network.Network
(a plain record: nothing of the original is run) and written back with the same class name.
"""
import argparse
import copy
import os
import pickle
import sys
import types

import numpy as np
import torch

from make_variants import tf_network_class  # the stand-in for dnnlib.tflib.network.Network


def tf_variants(src, out):
    sys.modules.setdefault("dnnlib", types.ModuleType("dnnlib"))  # no dnnlib here: the stand-in's parent
    tf_network_class()
    with open(src, "rb") as f:
        G, D, Gs = pickle.load(f)

    def write(name, nets):
        with open(os.path.join(out, name), "wb") as f:
            pickle.dump(nets, f, protocol=3)

    def emptied(net):  # the networks converted after the failing one need no variables
        net = copy.deepcopy(net)
        net.variables = []
        for c in net.components.values():
            c.variables = []
        return net

    bad = copy.deepcopy(G)
    synthesis = bad.components["synthesis"]
    synthesis.variables = [(n, np.zeros((3, 3, 32, 31), np.float32) if n == "8x8/Conv0_up/weight" else v)
                           for n, v in synthesis.variables]
    write("tf_wrong_shape.pkl", (bad, emptied(D), emptied(Gs)))
    odd = emptied(G)
    odd.static_kwargs["fancy_new_option"] = 3
    write("tf_unknown_kwarg.pkl", (odd, emptied(D), emptied(Gs)))
    old = emptied(G)
    old.version = 3
    write("tf_version3.pkl", (old, emptied(D), emptied(Gs)))


def rosinality_variants(src, out):
    ck = torch.load(src, map_location="cpu")
    odd = {"g_ema": ck["g_ema"], "args": ck["args"]}  # enough to fail the same way, and small
    odd["args"] = argparse.Namespace(**vars(ck["args"]))
    odd["args"].size = torch.zeros(2)
    torch.save({"args": odd["args"], "g_ema": {"style.1.weight": torch.zeros(4, 4)}}, os.path.join(out, "rosi_args_tensor.pt"))
    odd["args"] = argparse.Namespace(**vars(ck["args"]))
    odd["args"].size = 64
    torch.save(odd, os.path.join(out, "rosi_args_size.pt"))


def main():
    formats, out = sys.argv[1], sys.argv[2]
    tf_variants(os.path.join(formats, "tf_tiny32.pkl"), out)
    rosinality_variants(os.path.join(formats, "rosi_32.pt"), out)


if __name__ == "__main__":
    main()
