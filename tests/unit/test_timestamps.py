"""Timestamp format detection and parsing with real sample lines of every supported format."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from wizard.diag.logs.parse.timestamps import TimeContext, detect, format_named

AT = datetime(2026, 11, 22, 3, 48, 8, tzinfo=UTC).timestamp()
CTX = TimeContext(tz=UTC, year_ref=datetime(2026, 11, 23, tzinfo=UTC))

# Real lines in each format (rst-domain.md §3.2, the lab's logs).
SAMPLES = [
    ("iso8601", "2026-11-22T03:48:08Z app[1]: read tcp 10.0.0.1:443->10.0.0.2:5000: read: connection reset by peer", 0.0),
    ("iso8601", "2026-11-22T03:48:08.123456+00:00 web kernel: TCP: out of memory -- consider tuning tcp_mem", 0.123456),
    ("iso8601", "2026-11-22T03:48:08+0000 host sshd[99]: Connection reset by peer", 0.0),
    ("iso8601", "2026-11-22T03:48:08.123456789Z stdout F ConnectionResetError: [Errno 104]", 0.123456789),
    ("iso8601", "2026-11-22 03:48:08,123 ERROR urllib3.connectionpool Retrying after connection broken", 0.123),
    ("iso8601", "2026-11-22 03:48:08.123 UTC [1234] LOG:  could not receive data from client: Connection reset by peer", 0.123),
    ("iso8601", "<34>1 2026-11-22T03:48:08.003Z host app - - - Connection reset by peer", 0.003),
    ("syslog", "Nov 22 03:48:08 web01 kernel: [ 2221.698369] nf_conntrack: table full, dropping packet", 0.0),
    ("nginx-error", "2026/11/22 03:48:08 [error] 1234#1234: *5 recv() failed (104: Connection reset by peer) while reading response header from upstream", 0.0),
    ("access-log", '10.0.0.9 - - [22/Nov/2026:03:48:08 +0000] "GET /health HTTP/1.1" 502 157 "-" "curl/7.88.1"', 0.0),
    ("apache-error", "[Sun Nov 22 03:48:08.123456 2026] [proxy_http:error] [pid 1234:tid 5678] (104)Connection reset by peer: [client 10.0.0.9:5000] AH01102: error reading status line from remote server", 0.123456),
    ("epoch", "1795319288.660592 IP 10.0.0.1.443 > 10.0.0.2.5000: Flags [R.], seq 1, ack 1, win 0", 0.660592),
    ("klog", "I1122 03:48:08.123456       1 reflector.go:123] watch of *v1.Pod ended with: connection reset by peer", 0.123456),
]


@pytest.mark.parametrize("name,line,frac", SAMPLES)
def test_every_format_is_detected_and_parsed_to_the_same_instant(name: str, line: str, frac: float | None) -> None:
    fmt = detect([line], CTX)
    assert fmt is not None and fmt.name == name
    ts = fmt.parse(line, CTX)
    assert ts is not None
    if frac is not None:
        assert ts == pytest.approx(AT + frac, abs=1e-6)


def test_epoch_seconds_are_utc_whatever_the_local_zone() -> None:
    line = "1795319288.5 something"
    ts = format_named("epoch").parse(line, TimeContext(tz=ZoneInfo("Asia/Tokyo")))
    assert ts == 1795319288.5


def test_naive_times_are_read_in_the_given_zone() -> None:
    line = "2026/11/22 03:48:08 [error] 1#1: upstream prematurely closed connection"
    ny = format_named("nginx-error").parse(line, TimeContext(tz=ZoneInfo("America/New_York")))
    # 03:48 in New York in November (EST, UTC-5) is 08:48 UTC.
    assert ny == AT + 5 * 3600


def test_explicit_offsets_override_the_reading_zone() -> None:
    line = '1.2.3.4 - - [22/Nov/2026:04:48:08 +0100] "GET / HTTP/1.1" 200 1'
    ts = format_named("access-log").parse(line, TimeContext(tz=ZoneInfo("America/New_York")))
    assert ts == AT


def test_postgres_zone_name_utc_is_honoured_over_the_reading_zone() -> None:
    line = "2026-11-22 03:48:08.000 UTC [7] LOG:  could not receive data from client"
    assert format_named("iso8601").parse(line, TimeContext(tz=ZoneInfo("Europe/Berlin"))) == AT


def test_syslog_year_comes_from_the_reference_and_december_rolls_back_in_january() -> None:
    ref = TimeContext(tz=UTC, year_ref=datetime(2027, 1, 2, 10, 0, tzinfo=UTC))
    fmt = format_named("syslog")
    dec = fmt.parse("Dec 31 23:59:59 host kernel: Killed process 42 (java)", ref)
    jan = fmt.parse("Jan  1 00:00:01 host kernel: Killed process 43 (java)", ref)
    assert dec == datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
    assert jan == datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC).timestamp()
    assert jan - dec == 2


def test_syslog_space_padded_day_is_parsed() -> None:
    ts = format_named("syslog").parse("Nov  2 03:48:08 host app: x", CTX)
    assert ts == datetime(2026, 11, 2, 3, 48, 8, tzinfo=UTC).timestamp()


def test_detection_picks_the_format_most_first_lines_share() -> None:
    lines = [
        "Nov 22 03:48:08 lb haproxy[123]: 10.0.0.9:5000 [22/Nov/2026:03:48:08.123] fe be/s1 0/0/1/-1/2 502 0 - - SH-- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"",
        "Nov 22 03:48:09 lb haproxy[123]: 10.0.0.9:5001 [22/Nov/2026:03:48:09.001] fe be/s1 0/0/1/5/6 200 10 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"",
        "    continuation without a stamp",
    ]
    assert detect(lines, CTX).name == "syslog"


def test_lines_without_a_timestamp_do_not_parse() -> None:
    fmt = format_named("iso8601")
    assert fmt.parse('  File "/app/server.py", line 12, in handle', CTX) is None
    assert fmt.parse("Traceback (most recent call last):", CTX) is None
    assert detect(["no stamps here", "nor here"], CTX) is None


def test_haproxy_accept_date_with_milliseconds_parses_as_local_time() -> None:
    line = "10.0.0.9:5000 [22/Nov/2026:03:48:08.123] fe be/s1 0/0/1/-1/2 502"
    ts = format_named("access-log").parse(line, CTX)
    assert ts == pytest.approx(AT + 0.123)
    assert abs(ts - (AT + timedelta(seconds=0).total_seconds())) < 1


HAPROXY_SYSLOG = ('Nov 22 03:48:08 lb1 haproxy[2211]: 10.0.0.9:51234 [22/Nov/2026:03:48:07.915] '
                  'fe_https~ be_api/api2 0/0/1/-1/2 502 217 - - SD-- 3/3/1/0/0 0/0 "GET /v1/orders HTTP/1.1"')


def test_haproxy_line_in_syslog_is_timed_by_syslog_and_its_accept_date_parses_too() -> None:
    # The syslog prefix is when HAProxy logged (the end of the session); the accept date
    # inside the line is when the connection came in, a few milliseconds to hours earlier.
    fmt = detect([HAPROXY_SYSLOG] * 5, CTX)
    assert fmt is not None and fmt.name == "syslog"
    assert fmt.parse(HAPROXY_SYSLOG, CTX) == pytest.approx(AT)
    accept = format_named("access-log").parse(HAPROXY_SYSLOG, CTX)
    assert accept == pytest.approx(AT - 0.085)


def test_journald_short_unix_line_is_its_realtime_in_seconds() -> None:
    # journalctl -o short-unix prints __REALTIME_TIMESTAMP (microseconds) as seconds.dotted.
    realtime_us = 1795319288660592
    line = f"{realtime_us // 10**6}.{realtime_us % 10**6:06d} web01 nginx[1234]: recv() failed (104: Connection reset by peer)"
    fmt = detect([line], CTX)
    assert fmt is not None and fmt.name == "epoch"
    assert fmt.parse(line, CTX) == pytest.approx(realtime_us / 1e6, abs=1e-6)


def test_journald_short_iso_precise_line_keeps_its_zone() -> None:
    line = "2026-11-22T05:48:08.250000+02:00 web01 kernel: TCP: request_sock_TCP: Possible SYN flooding on port 443."
    fmt = detect([line], TimeContext(tz=timezone(timedelta(hours=-7))))
    assert fmt is not None and fmt.name == "iso8601"
    assert fmt.parse(line, CTX) == pytest.approx(AT + 0.25)


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Dublin", "Australia/Lord_Howe", "Pacific/Chatham",
                                  "Asia/Kathmandu", "UTC"])
def test_local_times_read_as_astimezone_reads_them_across_gaps_and_folds(zone: str,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # without a zone in the line or the context, a stamp is local time: read as
    # datetime.astimezone() reads it, in the hours the clock skips (a gap) or shows twice
    # (a fold) as anywhere else; every 20 s of 2025's two transition days and a year's minutes
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        tf, ctx = format_named("nginx-error"), TimeContext()
        days = [datetime(2025, 1, 1) + timedelta(days=k) for k in range(365)]
        offsets = {d: (d + timedelta(days=1)).astimezone().utcoffset() != d.astimezone().utcoffset() for d in days}
        changes = [d for d, changed in offsets.items() if changed]
        assert len(changes) == (0 if zone in ("UTC", "Asia/Kathmandu") else 2)
        when = [d + timedelta(seconds=s) for d in changes for s in range(0, 2 * 86400, 20)]
        when += [datetime(2025, 1, 1) + timedelta(minutes=m) for m in range(0, 365 * 1440, 97)]
        for w in when:
            assert tf.parse(f"{w:%Y/%m/%d %H:%M:%S} [error] x", ctx) == w.astimezone().timestamp(), w
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("where", ["local", "context"])
def test_a_minute_with_a_change_of_offset_inside_it_is_read_second_by_second(
        where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Stamps of one minute are read as its second 0 plus the second (timestamps._minute) only
    # where the offset holds all minute: Monrovia went from -0:44:30 to GMT on 1972-01-07 at
    # 00:00 local, so local 00:44:00-00:44:29 lie in the gap and :30 on in the new offset.
    zone = ZoneInfo("Africa/Monrovia")
    if where == "local":
        monkeypatch.setenv("TZ", "Africa/Monrovia")
        time.tzset()
    try:
        tf = format_named("nginx-error")
        ctx = TimeContext() if where == "local" else TimeContext(tz=zone)
        start = datetime(1972, 1, 6, 23, 58)
        for s in range(0, 2 * 3600):
            w = start + timedelta(seconds=s)
            want = w.astimezone().timestamp() if where == "local" else w.replace(tzinfo=zone).timestamp()
            assert tf.parse(f"{w:%Y/%m/%d %H:%M:%S} [error] x", ctx) == want, w
    finally:
        monkeypatch.undo()
        time.tzset()
