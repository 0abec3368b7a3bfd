"""CPU fp32 against GPU fp16 (autocast) CLIP vectors of the same items: cosine similarity per item.

    .venv/bin/python benchmarks/embed_parity.py [--images 128] [--texts 512]

Requirement (issue 4): cosine >= 0.999 for every item, images and texts. Without CUDA it says so
and exits 0 (nothing to compare); with CUDA it exits 1 when an item falls below the threshold.
Same weights (embed.clip in params.yaml, resolved as the pipeline does), same preprocessing,
same batches; the GPU runs the stage's own path (fp16 autocast, trimmed text forward).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

THRESHOLD = 0.999


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    args = parser.parse_args()

    import numpy as np
    import torch

    if not torch.cuda.is_available():
        print("SKIPPED: no CUDA device here; run this on a machine with a GPU to check CPU fp32 vs GPU fp16 parity.")
        return 0

    from embed_throughput import demo_items

    from tasks.core.params import load_params
    from tasks.embed.clip import load_encoder, resolve_weights
    from tasks.embed.stage import embed_image_files, embed_text_list

    params = load_params(args.params).embed
    identity = resolve_weights(params.clip, memo_dir=ROOT / params.cache.dir)
    paths, texts = demo_items(args.images, args.texts)
    image_keys, text_keys = [str(i) for i in range(len(paths))], [str(i) for i in range(len(texts))]
    results = {}
    for device in ("cpu", "cuda"):
        encoder = load_encoder(identity, params.clip, device, memo_dir=ROOT / params.cache.dir)
        images, failures = embed_image_files(encoder, paths, image_keys, params.image_batch_size, params.workers)
        assert not failures, failures
        text = embed_text_list(encoder, texts, text_keys, params.text_batch_size)
        results[device] = (np.stack([images[k] for k in image_keys]), np.stack([text[k] for k in text_keys]))
        del encoder
    print(f"model {identity.label()}; {torch.cuda.get_device_name()}")
    ok = True
    for i, kind in enumerate(("images", "texts")):
        cpu, gpu = results["cpu"][i], results["cuda"][i]
        cosine = (cpu * gpu).sum(axis=1) / (np.linalg.norm(cpu, axis=1) * np.linalg.norm(gpu, axis=1))
        worst = int(cosine.argmin())
        print(
            f"{kind:6s} n={len(cosine):5d}  cosine min {cosine.min():.6f}  mean {cosine.mean():.6f}  (worst item {worst})  "
            f"{'OK' if cosine.min() >= THRESHOLD else 'BELOW ' + str(THRESHOLD)}"
        )
        ok &= bool(cosine.min() >= THRESHOLD)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
