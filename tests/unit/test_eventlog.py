"""The watch's event log: every event stored compactly and read back as it was, the session's
JSON written from it the same, byte for byte, as from a list, and nothing left on disk."""

from __future__ import annotations

import copy
import os
import tempfile
from datetime import UTC, datetime, timedelta

import pytest

from wizard.model import Session, ToolInfo
from wizard.model.eventlog import STRIDE, EventLog
from wizard.model.observed import CaptureSummary, Observation, ResetEvent
from wizard.model.session import Context
from wizard.model.target import Target

T0 = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


def event(n: int) -> ResetEvent:
    sender = ("server-app", "path", "server-kernel")[n % 3]
    return ResetEvent(n=n, at=T0 + timedelta(milliseconds=n), source="live", flow=f"10.1.0.2:{1024 + n} -> 10.2.0.2:8080",
                      client=f"10.1.0.2:{1024 + n}", server="10.2.0.2:8080", toward="client", flags="RA",
                      sender=sender, sender_words=f"words {n}", reasons=[f"reason {n}", "ttl 64"], ttl=64,
                      hop_distance=0, proof="sent" if n % 2 else None, counters={"TcpOutRsts": n},
                      ladder={"lanes": ["client", "server"], "events": [{"ms": 1.5, "src": "server", "dst": "client",
                                                                        "label": f"RA seq={n}", "note": ""}]},
                      logs=[f"app.log: line {n} ünïcode"])


def filled(count: int) -> EventLog:
    log = EventLog()
    for n in range(1, count + 1):
        log.append(event(n))
    return log


def test_every_event_reads_back_as_it_was_by_index_slice_and_in_order():
    count = 3 * STRIDE + 7
    log = filled(count)
    assert len(log) == count and bool(log) and not EventLog()
    assert list(log) == [event(n) for n in range(1, count + 1)]
    assert log[0] == event(1) and log[-1] == event(count) and log[STRIDE] == event(STRIDE + 1)
    assert log[STRIDE - 2:STRIDE + 3] == [event(n) for n in range(STRIDE - 1, STRIDE + 4)]
    assert log[5:40:10] == [event(6), event(16), event(26), event(36)]
    with pytest.raises(IndexError):
        log[count]
    by_sender = {s: sum(1 for n in range(1, count + 1) if ("server-app", "path", "server-kernel")[n % 3] == s)
                 for s in ("path", "server-kernel", "server-app")}
    assert log.counts() == (by_sender, {"sent": (count + 1) // 2})
    # compressed: under the JSON of the events (itself a fraction of their Python objects)
    assert log.stored_bytes() < sum(len(event(n).model_dump_json()) for n in range(1, count + 1))


def test_a_view_maps_each_event_sees_what_was_stored_when_made_and_is_read_only():
    log = filled(10)
    view = log.mapped(lambda ev: ev.model_copy(update={"logs": ["hidden"]}))
    copied = copy.deepcopy(log)
    log.append(event(11))
    assert len(view) == 10 and len(copied) == 10 and len(log) == 11
    assert [ev.logs for ev in view] == [["hidden"]] * 10 and log[0].logs == event(1).logs
    assert view.counts()[0] == filled(10).counts()[0]
    with pytest.raises(TypeError):
        view.append(event(12))


def session_with(events: object) -> Session:
    obs = Observation(sources=[CaptureSummary(source="live", reader="packet socket")], kernel=["k"], logs=["l"])
    obs.events = events  # type: ignore[assignment]
    obs.count()
    return Session(tool=ToolInfo(version="test"), started_at=T0, target=Target(host="10.2.0.2", port=8080),
                   context=Context(client="c", server="local"), mode="watch", observation=obs)


@pytest.mark.parametrize("count", [0, 1, STRIDE + 3])
def test_the_session_json_from_the_log_is_the_lists_byte_for_byte(count):
    as_list = session_with([event(n) for n in range(1, count + 1)])
    from_log = session_with(filled(count))
    assert from_log.observation is not None and from_log.observation.by_sender == as_list.observation.by_sender  # type: ignore[union-attr]
    text = as_list.to_json()
    parts = list(from_log.json_parts())
    assert "".join(parts) == text == from_log.to_json()
    assert len(parts) == count + 3  # the events come one at a time
    assert Session.from_json(text).observation.events == as_list.observation.events  # type: ignore[union-attr]


def test_the_log_leaves_no_file_behind():
    before = set(os.listdir(tempfile.gettempdir()))
    log = filled(5)
    assert not any(name.startswith("reset-wizard-events-") for name in set(os.listdir(tempfile.gettempdir())) - before)
    fd = log._store.file.fileno()
    assert os.readlink(f"/proc/self/fd/{fd}").endswith("(deleted)") or "#" in os.readlink(f"/proc/self/fd/{fd}")
    del log
