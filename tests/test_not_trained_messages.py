"""Writing with a project that has no trained model: the core says what is wrong, each front end
says what to do in its own terms (the studio's test is in test_studio_menus.py)."""

from __future__ import annotations

import pytest

from textgen_core.errors import NotTrainedError
from textgen_core.generation import Generator
from textgen_core.project import Project


@pytest.fixture
def untrained(couplet_files, tmp_path) -> Project:
    return Project.create(tmp_path / "p", "couplet", couplet_files)


def test_the_core_says_only_what_is_wrong(untrained):
    with pytest.raises(NotTrainedError) as caught:
        Generator.from_project(untrained)
    assert str(caught.value) == f"{untrained.root}: no trained model yet"


def test_the_cli_says_which_command_trains_it(cli, untrained):
    result = cli("generate", untrained.root, "春风")
    assert result.code == 2
    assert result.err.strip() == f"error: {untrained.root}: no trained model yet; run textgen train " \
                                 f"{untrained.root} first"
