"""Embedding throughput end to end from the files on disk, next to the model-only forward pass on
the same preloaded tensors (same model, batch and device), and their ratio.

    .venv/bin/python benchmarks/embed_throughput.py [--images 64] [--texts 512] [--device auto]

Images, end to end: what the embed stage does per new item: read and sha256 the file, decode and
preprocess in DataLoader workers, forward, normalise, back to host memory. Model-only: the same
images decoded and preprocessed beforehand, already on the device, through encode_image.
Target on a GPU with ViT-B-32: end to end >= 0.9 of model-only.

Texts, end to end: tokenise, sort by length, forward trimmed to each batch's longest text,
normalise, to host. Model-only: the same token batches preloaded on the device, through
(a) the trimmed forward and (b) open_clip's encode_text over the full 77-token context.

Items come from the demo release (data/public/*) when it is there, else they are generated.
The weights are whatever embed.clip in params.yaml resolves to (random-init offline: the speed
is the same as with trained weights).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def demo_items(n_images: int, n_texts: int) -> tuple[list[Path], list[str]]:
    """Distinct images and texts of the demo release, in a fixed order; generated when it is absent."""
    import pyarrow.parquet as pq

    from tasks.embed.stage import join_text, text_spec

    images = sorted(ROOT.glob("data/public/*/images/*"))
    texts: list[str] = []
    for card_path in sorted(ROOT.glob("data/public/*/card.json")):
        import json

        card = json.loads(card_path.read_text())
        spec = text_spec(card_path.parent.name, card, None)
        if spec is None:
            continue
        for table in ("train", "test", "left", "right"):
            path = card_path.parent / f"{table}.parquet"
            if path.exists():
                texts += [
                    t for t in (join_text(spec, r) for r in pq.read_table(path, columns=spec.columns).to_pylist()) if t
                ]
    texts = list(dict.fromkeys(texts))
    if len(images) < n_images:
        images = generated_images(n_images)
    if len(texts) < n_texts:
        texts = [
            f"item {i}: {' '.join(['nordic', 'oak', 'lamp', 'matte', 'purple', 'vase'][: 1 + i % 6])} size {i % 40}"
            for i in range(n_texts)
        ]
    step_i, step_t = max(1, len(images) // n_images), max(1, len(texts) // n_texts)
    return images[::step_i][:n_images], texts[::step_t][:n_texts]


def generated_images(n: int) -> list[Path]:
    from PIL import Image

    folder = Path(tempfile.mkdtemp(prefix="mmtc-bench-"))
    paths = []
    for i in range(n):
        image = Image.new("RGB", (256, 256), ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256))
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=90)
        path = folder / f"{i}.jpg"
        path.write_bytes(buf.getvalue())
        paths.append(path)
    return paths


def sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def timed(fn, device: str) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument(
        "--device", choices=["auto", "cpu", "cuda"], default=None, help="default: embed.device from params.yaml"
    )
    parser.add_argument("--image-batch", type=int, default=None)
    parser.add_argument("--text-batch", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    args = parser.parse_args()

    import numpy as np
    import torch

    from tasks.core.params import load_params
    from tasks.embed.clip import encode_text_trimmed, load_encoder, resolve_device, resolve_weights, text_lengths
    from tasks.embed.stage import ImageFiles, collate_images, decode_workers, embed_image_files, embed_text_list

    params = load_params(args.params).embed
    device = resolve_device(args.device or params.device)
    image_batch, text_batch = args.image_batch or params.image_batch_size, args.text_batch or params.text_batch_size
    workers = params.workers if args.workers is None else args.workers
    identity = resolve_weights(params.clip, memo_dir=ROOT / params.cache.dir)
    encoder = load_encoder(identity, params.clip, device, memo_dir=ROOT / params.cache.dir)
    paths, texts = demo_items(args.images, args.texts)
    print(
        f"model {identity.label()} on {device} ({encoder.compute}); torch threads {torch.get_num_threads()}; "
        f"image batch {image_batch}, workers {decode_workers(workers, device)}; text batch {text_batch}"
    )

    # --- images -------------------------------------------------------------------------
    keys = [str(i) for i in range(len(paths))]
    warm = torch.stack([ImageFiles(paths[:1], encoder.transform)[0][1]] * min(image_batch, len(paths)))
    encoder.encode_images(warm)  # warm-up: kernels, allocator

    def images_end_to_end():
        with ThreadPoolExecutor(8) as pool:  # the stage hashes every file for its cache key
            list(pool.map(lambda p: hashlib.sha256(p.read_bytes()).hexdigest(), paths))
        vectors, failures = embed_image_files(encoder, paths, keys, image_batch, workers)
        assert len(vectors) == len(paths) and not failures

    dataset = ImageFiles(paths, encoder.transform)
    batches = [
        collate_images([dataset[i] for i in range(s, min(s + image_batch, len(paths)))])[1]
        for s in range(0, len(paths), image_batch)
    ]
    batches = [b.to(device) for b in batches]

    def images_model_only():
        out = [encoder.encode_images(b) for b in batches]
        torch.cat(out).cpu()

    e2e_img = timed(images_end_to_end, device)
    model_img = timed(images_model_only, device)

    # --- texts --------------------------------------------------------------------------
    text_keys = [str(i) for i in range(len(texts))]
    tokens = encoder.tokenize(texts)
    order = np.argsort(text_lengths(tokens), kind="stable")
    full_batches = [tokens[order[s : s + text_batch]] for s in range(0, len(order), text_batch)]
    trimmed_batches = [b[:, : int(text_lengths(b).max())].to(device) for b in full_batches]  # preloaded, trimmed
    full_batches = [b.to(device) for b in full_batches]
    encoder.encode_tokens(full_batches[0][:, :], trimmed=encoder.trimmed_text)  # warm-up

    def texts_end_to_end():
        assert len(embed_text_list(encoder, texts, text_keys, text_batch)) == len(texts)

    def texts_model_only(trimmed: bool):
        import torch.nn.functional as F

        out = []
        with torch.inference_mode(), encoder._autocast():
            for b in trimmed_batches if trimmed else full_batches:
                features = (
                    encode_text_trimmed(encoder.model, b, b.shape[1]) if trimmed else encoder.model.encode_text(b)
                )
                out.append(F.normalize(features.float(), dim=-1))
        torch.cat(out).cpu()

    e2e_txt = timed(texts_end_to_end, device)
    model_txt = timed(lambda: texts_model_only(True), device) if encoder.trimmed_text else float("nan")
    full_txt = timed(lambda: texts_model_only(False), device)
    mean_len = float(text_lengths(tokens).mean())

    n_i, n_t = len(paths), len(texts)
    print(f"\nimages ({n_i}, from {'the demo release' if 'public' in str(paths[0]) else 'generated files'}):")
    print(f"  end to end from disk   {n_i / e2e_img:9.1f} img/s  ({e2e_img:.2f} s)")
    print(f"  model only (preloaded) {n_i / model_img:9.1f} img/s  ({model_img:.2f} s)")
    print(f"  ratio end-to-end / model-only: {model_img / e2e_img:.3f}   (GPU target >= 0.9)")
    print(f"\ntexts ({n_t} distinct, mean {mean_len:.1f} tokens of 77):")
    print(f"  end to end (tokenise, sort, trimmed forward) {n_t / e2e_txt:9.1f} texts/s  ({e2e_txt:.2f} s)")
    if encoder.trimmed_text:
        print(f"  model only, trimmed forward (preloaded)      {n_t / model_txt:9.1f} texts/s  ({model_txt:.2f} s)")
        print(f"  ratio end-to-end / model-only (trimmed): {model_txt / e2e_txt:.3f}")
    print(f"  model only, open_clip encode_text (77 tokens) {n_t / full_txt:8.1f} texts/s  ({full_txt:.2f} s)")
    print(
        f"  ratio end-to-end / encode_text model-only: {full_txt / e2e_txt:.3f}   (> 1: trimming beats the plain forward)"
    )


if __name__ == "__main__":
    main()
