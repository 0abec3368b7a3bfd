"""Embed: CLIP loading and weights resolution, and the embeddings of every release (model configs as data)."""
