"""Counted nouns where the CLI and the engine say them: one reset is "1 reset"."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from wizard.model.observed import Observation, ResetEvent
from wizard.model.wording import plural

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def observation(n: int) -> Observation:
    obs = Observation(events=[
        ResetEvent(n=i + 1, at=T0, source="a.pcap", flow=f"10.0.0.1:{40000 + i} -> 10.0.0.2:443",
                   client="10.0.0.1", server="10.0.0.2", toward="client", flags="R", sender="path",
                   sender_words="sent by a device on the path", reasons=["TTL 60 vs 64"], ttl=60,
                   hop_distance=4) for i in range(n)])
    obs.count()
    return obs


@pytest.mark.parametrize("count, word, said", [
    (0, "reset", "0 resets"), (1, "reset", "1 reset"), (2, "listener", "2 listeners"),
    (1, "address", "1 address"), (3, "address", "3 addresses"), (1, "process", "1 process")])
def test_plural_says_one_in_the_singular_and_the_rest_in_the_plural(count: int, word: str, said: str) -> None:
    assert plural(count, word) == said


@pytest.mark.parametrize("n, count", [(1, "1 reset"), (2, "2 resets")])
def test_the_observed_resets_are_counted_in_the_right_number(n: int, count: str) -> None:
    from wizard.engine.observe import observed_result

    result = observed_result(observation(n), "a.pcap")
    assert result.summary.startswith(f"{count}: ")
    assert result.evidence[0].title == f"{count} by sender"
    facts = [s.fact for s in result.signals if s.id == "rst.from_path"]
    assert facts and all(f"of {count} sent" in fact for fact in facts)


@pytest.mark.parametrize("n, line", [(1, "1 reset: 1 path"), (2, "2 resets: 2 path")])
def test_analyze_counts_its_resets_in_the_right_number(n: int, line: str) -> None:
    from wizard.cli.analyze import verdict
    from wizard.engine.discovery import load
    from wizard.model import Context, Session, ToolInfo, parse_target

    s = Session(tool=ToolInfo(version="t"), started_at=T0, target=parse_target("10.0.0.2:443"),
                context=Context(client="c", server="local"), observation=observation(n))
    assert verdict(s, load())[0] == line


def test_a_fix_splits_into_commands_to_paste_and_the_words_beside_them() -> None:
    from wizard.model.wording import fix_ways

    fix = "mount -t tracefs nodev /sys/kernel/tracing (or let the wizard mount it: --allow-tracefs-mount)"
    assert fix_ways(fix, ["diagnose", "127.0.0.1:8080", "--server", "netns:x"]) == [
        ("mount -t tracefs nodev /sys/kernel/tracing", ""),
        ("reset-wizard diagnose 127.0.0.1:8080 --server netns:x --allow-tracefs-mount", "let the wizard mount it")]
    # without this run's command line an option is named, not a guessed command
    assert fix_ways(fix)[1] == ("", "rerun with --allow-tracefs-mount (let the wizard mount it)")
    assert fix_ways("run as root: sudo reset-wizard ...", ["diagnose", "h:1"]) == [
        ("sudo reset-wizard diagnose h:1", "run as root")]
    assert fix_ways("install nftables: apt install nftables") == [("apt install nftables", "install nftables")]
    # Prose stays prose: no command is made of it.
    assert fix_ways("run as root (sudo reset-wizard ...), or grant cap_net_raw") == [
        ("", "run as root (sudo reset-wizard ...)"), ("", "grant cap_net_raw")]
