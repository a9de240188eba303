"""Every ``edgeseg`` command the README shows parses: its command exists and every option and
value is accepted by the CLI as it is today (parsed by click exactly as a run would, without
running the command). A renamed flag or command fails here, not on a newcomer's machine."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from edgeseg.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    """The ``edgeseg ...`` lines of the README's bash blocks (comments stripped)."""
    text = (ROOT / "README.md").read_text()
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" # ")[0].strip()
            if line.startswith("edgeseg "):
                lines.append(line)
    return lines


def parse(argv: list[str]) -> click.Context:
    """Resolve and parse ``argv`` through the group and its subcommands, as ``main`` would."""
    command: click.Command = cli
    parent = None
    name = "edgeseg"
    while True:
        context = command.make_context(name, list(argv), parent=parent)
        if not isinstance(command, click.Group):
            return context
        rest = [*context._protected_args, *context.args]
        name, command, argv = command.resolve_command(context, rest)
        parent = context


def test_the_readme_shows_commands() -> None:
    commands = readme_commands()
    assert len(commands) >= 15
    assert {shlex.split(c)[1] for c in commands} >= {"train", "eval", "export", "run", "bench"}


@pytest.mark.parametrize("line", readme_commands())
def test_readme_command_parses(line: str) -> None:
    argv = shlex.split(line)[1:]
    context = parse(argv)
    assert not isinstance(context.command, click.Group) and context.command.name in argv


def test_a_wrong_flag_would_be_caught() -> None:
    with pytest.raises(click.UsageError):
        parse(["export", "runs/camvid/best.pt", "--no-such-flag"])
    with pytest.raises(click.UsageError):
        parse(["no-such-command"])
