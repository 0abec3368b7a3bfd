"""The bundled demo challenge: one seeded generator per task, registered here.

Each generator writes a raw contribution (task.yaml plus files) the way a different team
would, deterministic from `demo.seed` and its own options in params.yaml.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tasks.core.errors import InputError
from tasks.core.files import staged_dir
from tasks.demo.generators import car_class, fastfood_chain, person_link, product_dedup, product_type, product_variants

GENERATORS: dict[str, Callable[[Path, int, dict], None]] = {
    module.TASK_ID: module.generate
    for module in (car_class, fastfood_chain, product_type, person_link, product_dedup, product_variants)
}


def generate_contribution(task_id: str, out: Path, seed: int, options: dict | None = None) -> Path:
    """Write the raw contribution of one demo task to `out` (replacing it whole, or not at all)."""
    if task_id not in GENERATORS:
        raise InputError(
            problem=f"no demo generator named '{task_id}'", fix=f"use one of {', '.join(GENERATORS)}", task=task_id
        )
    with staged_dir(Path(out)) as stage:
        GENERATORS[task_id](stage, seed, options or {})
    return Path(out)
