"""Makes tests/data/export/rosinality_tiny32.json: the state-dict keys and shapes (in order) of
rosinality stylegan2-pytorch's own Generator and Discriminator built for golden/tiny32's shapes
(32x32, style_dim 64, n_mlp 8, channels 64/64/64/32 from 4x4 up), which a .pt export of tiny32 must
have for load_state_dict(strict=True).

Usage: python3 make_rosinality_manifest.py ROSINALITY_REPO OUT.json
(Debian's python3-torch; the repo is read for its network code, nothing of it is committed.)
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "scripts"))
from check_export_rosinality import load_repo_model  # noqa: E402


def main():
    repo, out = sys.argv[1:3]
    m = load_repo_model(repo)
    m.CHANNELS.update({4: 64, 8: 64, 16: 64, 32: 32})
    manifest = {
        "source": "rosinality/stylegan2-pytorch model.py: Generator(32, 64, 8), Discriminator(32), channels {4: 64, 8: 64, 16: 64, 32: 32}",
        "g_ema": [[k, list(v.shape)] for k, v in m.Generator(32, 64, 8).state_dict().items()],
        "d": [[k, list(v.shape)] for k, v in m.Discriminator(32).state_dict().items()],
    }
    with open(out, "w") as f:
        json.dump(manifest, f)
        f.write("\n")


if __name__ == "__main__":
    main()
