"""Folders swapped in whole: a failed, interrupted or killed build leaves the previous folder, a
decided multi-folder commit is finished by the next one, and what dead runs left is swept."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tasks.core import files
from tasks.core.files import commit_journal, exchange_paths, finish_commit, sha256_tree, staged_dir, staged_dirs


def write(folder, text):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.txt").write_text(text)


def test_exchange_swaps_two_folders_in_one_step(tmp_path):
    write(tmp_path / "a", "a")
    write(tmp_path / "b", "b")
    if not exchange_paths(tmp_path / "a", tmp_path / "b"):
        pytest.skip("this file system has no atomic exchange (staged_dir falls back to two renames)")
    assert (tmp_path / "a" / "data.txt").read_text() == "b" and (tmp_path / "b" / "data.txt").read_text() == "a"


def test_given_a_failing_body_then_the_previous_folder_stays_and_nothing_is_left(tmp_path):
    write(tmp_path / "release", "old")
    with pytest.raises(RuntimeError), staged_dir(tmp_path / "release") as stage:
        (stage / "data.txt").write_text("half")
        raise RuntimeError("refused")
    assert (tmp_path / "release" / "data.txt").read_text() == "old"
    assert os.listdir(tmp_path) == ["release"]


def test_given_a_good_body_then_the_new_folder_replaces_the_old_whole(tmp_path):
    write(tmp_path / "release", "old")
    (tmp_path / "release" / "gone.txt").write_text("only in the old one")
    with staged_dir(tmp_path / "release") as stage:
        (stage / "data.txt").write_text("new")
    assert sorted(os.listdir(tmp_path / "release")) == ["data.txt"]
    assert (tmp_path / "release" / "data.txt").read_text() == "new"
    assert os.listdir(tmp_path) == ["release"]


def test_given_stages_of_dead_runs_then_they_are_swept_but_a_live_one_is_kept(tmp_path):
    dead = tmp_path / ".release.stage-dead"
    write(dead, "left by a killed run")
    live = subprocess.Popen(  # a live run holding its stage
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom tasks.core.files import staged_dir\n"
            f"with staged_dir({str(tmp_path / 'release')!r}) as s:\n    print(s, flush=True); time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        live_stage = live.stdout.readline().strip()
        with staged_dir(tmp_path / "release") as stage:
            (stage / "data.txt").write_text("new")
        assert not dead.exists()
        assert os.path.isdir(live_stage)
    finally:
        live.kill()
        live.wait()
    with staged_dir(tmp_path / "release") as stage:  # its owner is dead now: swept
        (stage / "data.txt").write_text("newer")
    assert os.listdir(tmp_path) == ["release"]


def test_given_a_commit_interrupted_between_its_swaps_then_finish_commit_completes_it(tmp_path, monkeypatch):
    private, public = tmp_path / "private" / "task", tmp_path / "public" / "task"
    write(private, "old labels")
    write(public, "old release")
    real_swap = files._swap_in
    swaps = []

    def swap_then_die(stage, final):
        if swaps:
            raise KeyboardInterrupt  # stands for a kill between the two swaps
        swaps.append(final)
        return real_swap(stage, final)

    monkeypatch.setattr(files, "_swap_in", swap_then_die)
    with pytest.raises(KeyboardInterrupt), staged_dirs([private, public]) as (priv, pub):
        (priv / "data.txt").write_text("new labels")
        (pub / "data.txt").write_text("new release")
    assert (private / "data.txt").read_text() == "new labels"
    assert (public / "data.txt").read_text() == "old release"
    assert commit_journal(private).exists()
    monkeypatch.setattr(files, "_swap_in", real_swap)
    finish_commit(commit_journal(private))
    assert (public / "data.txt").read_text() == "new release"
    assert not commit_journal(private).exists()
    with staged_dirs([private, public]) as (priv, pub):  # the next commit sweeps the previous folders
        (priv / "data.txt").write_text("newer labels")
        (pub / "data.txt").write_text("newer release")
    assert os.listdir(tmp_path / "private") == ["task"] and os.listdir(tmp_path / "public") == ["task"]


def test_tree_digest_counts_a_link_by_its_text_and_never_reads_outside(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    write(tmp_path / "tree", "x")
    os.symlink(outside, tmp_path / "tree" / "link.txt")
    before = sha256_tree(tmp_path / "tree")
    outside.write_text("another secret")
    assert sha256_tree(tmp_path / "tree") == before
