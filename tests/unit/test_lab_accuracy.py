"""The accuracy runner's table and README section (pure: outcomes made by hand, a temp README)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wizard.lab.accuracy import MARKERS, main, table, write_readme
from wizard.lab.runs import Outcome
from wizard.lab.scenarios import Scenario

A = Scenario("a/x", "keepalive-race", "an explanation long enough for the lab's own rule")
B = Scenario("b/y", "no-reset-observed", "an explanation long enough for the lab's own rule")


def _o(s: Scenario, said: str) -> Outcome:
    return Outcome(s, said=said, confidence=0.9)


def test_the_table_counts_right_runs_per_load_and_names_the_wrong_verdicts() -> None:
    results = {"none": {"a/x": [_o(A, "keepalive-race")] * 5, "b/y": [_o(B, "no-reset-observed")] * 5},
               "cpu": {"a/x": [_o(A, "keepalive-race")] * 4 + [_o(A, "idle-timeout")],
                       "b/y": [_o(B, "no-reset-observed")] * 5}}
    text = table([A, B], results, 5, 12.0, "real", "python -m wizard.lab.accuracy --set real")
    assert "**19 of 20 runs right**" in text
    assert "| `a/x` | `keepalive-race` | 5/5 | 4/5 (also: `idle-timeout`) |" in text
    assert "| `b/y` | `no-reset-observed` | 5/5 | 5/5 |" in text
    assert "`python -m wizard.lab.accuracy --set real`" in text and "real servers" in text


def test_each_set_replaces_only_its_own_readme_section(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("intro\n")
    write_readme("## own\nfirst\n", "own", readme)
    write_readme("## real\nfirst\n", "real", readme)
    write_readme("## real\nsecond\n", "real", readme)
    text = readme.read_text()
    assert text.count(MARKERS["own"][0]) == 1 and text.count(MARKERS["real"][0]) == 1
    assert "## own\nfirst" in text and "## real\nsecond" in text and "## real\nfirst" not in text


@pytest.mark.parametrize("argv", [["--runs", "0"], ["--set", "all", "--write-readme"], ["--load", "hot"]])
def test_bad_options_are_one_line_and_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()[-1:]) == 1
