"""The README and docs/ say only what is true of the code: every command in a bash block is one
that parses (mmtc subcommands and their options, make targets, benchmark scripts, Python
snippets), and every path they name under the project's folders exists."""

from __future__ import annotations

import functools
import re
import shlex
import tempfile
from pathlib import Path

import pytest

from tasks.cli import build_parser
from tests.conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BASH_BLOCK = re.compile(r"^[ \t]*```bash\n(.*?)^[ \t]*```", re.S | re.M)
PROJECT_PATH = re.compile(r"`((?:tasks|flows|benchmarks|tests|docs)/[^`\s]*)`")
LINK = re.compile(r"\]\(([^)#]+)\)")
TOOLS = {"git", "cd", "export", "apt-get"}  # run as they are; the rest must be ours
VENV_TOOLS = {"dvc", "prefect", "ruff"}


def commands(markdown: str) -> list[list[str]]:
    """Every simple command of every bash block, as words, with env assignments dropped."""
    out = []
    for block in BASH_BLOCK.findall(markdown):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            command: list[str] = []
            for word in [*words, ";"]:
                if word in ("&&", ";", "&", "|", "||"):
                    while command and re.match(r"^[A-Z_]+=", command[0]):
                        command.pop(0)
                    if command:
                        out.append(command)
                    command = []
                elif word.endswith("&") and word != "&":
                    command.append(word[:-1])
                    out.append(command)
                    command = []
                else:
                    command.append(word)
    return out


@functools.cache
def portal_routes() -> frozenset[str]:
    from tasks.core.params import load_params
    from tasks.portal.app import create_app

    with tempfile.TemporaryDirectory() as root:  # the app makes its data folder there, not in the repo
        return frozenset(r.path for r in create_app(load_params(ROOT / "params.yaml"), Path(root)).routes)


def check(words: list[str]) -> None:
    program, args = words[0], words[1:]
    name = program.removeprefix(".venv/bin/")
    if program in TOOLS:
        return
    if name == "make":
        targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
        assert set(args) <= targets, f"make {' '.join(args)}: the Makefile has {sorted(targets)}"
    elif name == "mmtc":
        try:
            build_parser().parse_args(args)
        except SystemExit as exc:
            if exc.code != 0:  # --help exits 0
                raise AssertionError(f"mmtc {' '.join(args)} does not parse") from exc
    elif name == "python":
        if args[:1] == ["-c"]:
            compile(args[1], "<docs>", "exec")
        elif args[:1] == ["-m"]:
            assert args[1] in ("pytest",), args
        else:
            script = ROOT / args[0]
            assert script.is_file(), f"{args[0]} does not exist"
            source = script.read_text(encoding="utf-8")
            for flag in (a for a in args[1:] if a.startswith("--")):
                assert f'"{flag}"' in source, f"{args[0]} has no option {flag}"
    elif name == "curl":
        urls = [a for a in args if a.startswith("http://")]
        assert urls, f"curl {' '.join(args)}: no portal address"
        for url in urls:
            path = "/" + url.split("://", 1)[1].split("/", 1)[1]
            assert path in portal_routes(), f"curl: {path} is not a route of the portal"
    elif name in VENV_TOOLS:
        assert program.startswith(".venv/bin/"), f"{program}: use the project's own .venv/bin/{name}"
    else:
        raise AssertionError(f"the docs run {program!r}, which no test knows")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_command_in_the_docs_parses(doc):
    found = commands(doc.read_text(encoding="utf-8"))
    for words in found:
        check(words)


def test_the_docs_show_commands():
    assert sum(len(commands(d.read_text(encoding="utf-8"))) for d in DOCS) >= 30


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_project_path_and_link_in_the_docs_exists(doc):
    text = doc.read_text(encoding="utf-8")
    missing = []
    for path in PROJECT_PATH.findall(text):
        if "<" in path or "*" in path:  # a pattern: its folder must exist
            path = path.split("<")[0].split("*")[0].rsplit("/", 1)[0]
        if not (ROOT / path.rstrip("/")).exists():
            missing.append(path)
    for link in LINK.findall(text):
        if "://" not in link and not (doc.parent / link).exists():
            missing.append(link)
    assert not missing, f"{doc.name} names paths that do not exist: {missing}"


def test_the_readme_is_short_and_links_every_guide():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme) < 9000
    for guide in ("organisers", "participants", "operations", "development"):
        assert f"(docs/{guide}.md)" in readme
