"""The README's code blocks run as shown.

Every line of a README code block is one of:
- ``make TARGET``: the target exists and does what the README says beside it (a dry run, ``make -n``:
  ``make run`` would open a window and ``make test`` is this suite);
- a ``geodesk`` synopsis line (placeholders such as ``CASE``, ``[--opt]``, ``a | b``, with its indented
  continuation lines): every command, subcommand and ``--option`` it names is one the parser accepts;
- a ``geodesk`` example (no placeholders): run as shown, in order, in a temporary folder and
  workspace; it must succeed. Examples that take more than a few seconds are in the slow test.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# A token that stands for something the reader fills in: CASE, OUT.zip, FILE.kml, NAME[@VERSION], x0,y0...
_PLACEHOLDER = re.compile(r"[A-Z]{2,}|\.\.\.|…|\||\[|\]|^x0,|^<")


@dataclass
class Block:
    line: int  # where the block starts in README.md
    lines: list[str] = field(default_factory=list)


def code_blocks() -> list[Block]:
    blocks: list[Block] = []
    current: Block | None = None
    for number, text in enumerate(README.read_text(encoding="utf-8").splitlines(), 1):
        if text.startswith("```"):
            if current is None:
                current = Block(number)
            else:
                blocks.append(current)
                current = None
        elif current is not None:
            current.lines.append(text)
    assert current is None, "README.md has an unclosed code block"
    return blocks


def _words(line: str) -> list[str]:
    """The command part of a line: a '#' comment or a description after two spaces is not part of it."""
    command = re.split(r"\s{2,}(?![|\[])", line.strip(), maxsplit=1)[0]
    return shlex.split(command, comments=True)


def is_example(words: list[str]) -> bool:
    """A geodesk command with nothing to fill in (a bare `geodesk` opens the app: not run here)."""
    return len(words) > 1 and words[0] == "geodesk" and not any(_PLACEHOLDER.search(w) for w in words[1:])


def synopses() -> list[tuple[int, list[str]]]:
    """(README block line, the words of one synopsis entry and its continuation lines)."""
    out: list[tuple[int, list[str]]] = []
    for block in code_blocks():
        for text in block.lines:
            if text.startswith("geodesk ") or text.strip() == "geodesk":
                if not is_example(_words(text)):
                    out.append((block.line, re.split(r"\s{2,}", text.strip())[0].split()))
            elif text.startswith(" ") and out and out[-1][0] == block.line and text.strip()[:1] in "|[":
                out[-1][1].extend(re.split(r"\s{2,}\(", text.strip())[0].split())
    return out


def examples() -> list[tuple[int, list[list[str]]]]:
    """(README block line, its geodesk example commands in order), for blocks that hold any."""
    out = []
    for block in code_blocks():
        commands = [w for w in (_words(t) for t in block.lines) if is_example(w)]
        if commands:
            out.append((block.line, commands))
    return out


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps no public list of its subcommands
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {o for action in parser._actions for o in action.option_strings}


def test_the_readme_has_the_blocks_this_test_reads() -> None:
    assert len(synopses()) >= 18  # the command-line synopsis
    assert examples(), "no runnable geodesk example left in README.md"


@pytest.mark.parametrize(
    ("block", "words"), synopses(), ids=lambda v: " ".join(v[:3]) if isinstance(v, list) else str(v)
)
def test_every_synopsis_names_real_commands_and_options(block: int, words: list[str]) -> None:
    from geodesk.cli import build_parser

    parser = build_parser()
    top = _subparsers(parser)
    if words == ["geodesk"]:
        return  # bare `geodesk` opens the app
    command = words[1]
    assert command in top, f"README.md block at line {block}: no command `geodesk {command}`"
    chosen = top[command]
    subs = _subparsers(chosen)
    # subcommands: the word after the command, and every word after a '|' that starts an alternative
    # ("show|hide|remove" after a '|' names three); "a|b" elsewhere is a choice of values, not commands
    starts = words[2:3] + [w for prev, w in itertools.pairwise(words) if prev == "|"]
    named = [n for w in starts for n in w.split("|") if re.fullmatch(r"[a-z][a-z-]*", n)]
    if subs:
        for name in named:
            assert name in subs, f"README.md block at line {block}: no `geodesk {command} {name}`"
    known = _options(parser) | _options(chosen) | {o for p in subs.values() for o in _options(p)}
    for option in (m.group(0) for w in words for m in re.finditer(r"--[a-z][a-z0-9-]*", w)):
        assert option in known, f"README.md block at line {block}: `geodesk {command}` has no {option}"


def _run(words: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "geodesk", *words[1:]] if words[0] == "geodesk" else words
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("block", "commands"), examples(), ids=lambda v: f"line {v}" if isinstance(v, int) else ""
)
def test_every_example_runs_as_shown(block: int, commands: list[list[str]], tmp_path: Path) -> None:
    env = {**os.environ, "GEODESK_WORKSPACE": str(tmp_path / "workspace"), "PYTHONPATH": str(ROOT)}
    for words in commands:
        done = _run(words, tmp_path, env)
        assert done.returncode == 0, (
            f"README.md block at line {block}: `{shlex.join(words)}` failed:\n{done.stderr}"
        )


@pytest.mark.parametrize(
    ("target", "steps"),
    [
        ("run", ["pip install", "bin/geodesk"]),  # installs into .venv if needed, then opens the app
        ("test", ["ruff", "mypy", "lint-imports", "pytest"]),  # ruff, mypy, import-linter, the tests
    ],
)
def test_the_make_targets_do_what_the_readme_says(target: str, steps: list[str]) -> None:
    lines = [w for b in code_blocks() for t in b.lines if (w := _words(t))[:1] == ["make"]]
    assert ["make", target] in lines
    done = subprocess.run(
        # -B: every step as on a fresh clone, whatever this checkout has already built
        ["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    positions = [done.stdout.find(step) for step in steps]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), done.stdout
