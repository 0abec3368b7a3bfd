"""Probing resistance: what the published board lets a team learn about the hidden labels.

A public score printed to full precision lets a team count its exact true and false positives
and, submission after submission, read the hidden labels off the board. Every score the board
publishes (latest.* and the snapshots) is therefore rounded to `leaderboard.public_decimals`;
full precision stays in results/, which is never published.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc


def round_scores(board: pa.Table, decimals: int) -> pa.Table:
    """Every float column of the board rounded to `decimals` (half to even, as Python's round)."""
    for i, f in enumerate(board.schema):
        if pa.types.is_floating(f.type):
            rounded = pc.round(board.column(i), ndigits=int(decimals), round_mode="half_to_even")
            board = board.set_column(i, f, rounded)
    return board
