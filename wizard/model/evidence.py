"""The kinds of evidence as a tagged union: what each kind holds, read once from the wire.

A check records evidence as :class:`~wizard.model.results.Evidence` (kind, title, source,
verbatim text, highlighted lines and a ``data`` dict), which is also the session JSON's
shape. :func:`body` turns that record into one typed member of :data:`Body` by its kind;
the report and the TUI render those members, one renderer per kind, and never read
``data`` themselves. Whatever of ``data`` a kind does not model is kept in ``extra`` (the
report prints it folded, for machines and the curious).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from wizard.model.factories import new_dict, new_list

if TYPE_CHECKING:
    from wizard.model.results import Evidence


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True)

    title: str
    source: str = ""
    extra: dict[str, Any] = Field(default_factory=new_dict)


class LogExcerpt(_Body):
    """Lines of a log, the matching ones marked (0-based indexes into ``text``'s lines)."""

    kind: Literal["log"] = "log"
    text: str = ""
    highlight: list[int] = Field(default_factory=new_list)


class Table(_Body):
    """Rows under named columns; ``marked`` rows matched (a rule, a moved counter)."""

    kind: Literal["table"] = "table"
    columns: list[str] = Field(default_factory=new_list)
    rows: list[list[Any]] = Field(default_factory=new_list)
    marked: list[int] = Field(default_factory=new_list)
    text: str = ""


class Counter(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    before: float | int | None = None
    after: float | int | None = None
    delta: float | int | None = None


class Counters(_Body):
    """Kernel counters read before and after a probe, in the order the check read them."""

    kind: Literal["counters"] = "counters"
    counters: list[Counter] = Field(default_factory=new_list)
    text: str = ""

    def moved(self) -> list[int]:
        return [i for i, c in enumerate(self.counters) if c.delta]


class Rules(_Body):
    """Firewall rules verbatim; ``whole`` when this is the entire ruleset, not the matches."""

    kind: Literal["rules"] = "rules"
    text: str = ""
    highlight: list[int] = Field(default_factory=new_list)
    whole: bool = False
    table: Table | None = Field(default=None, description="the rules as rows under columns, when given so")


class LadderEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    ms: float | None = None
    src: str = ""
    dst: str = ""
    label: str = ""
    note: str | None = None


class Ladder(_Body):
    """A connection as a ladder diagram: lanes (client, path, server) and timed packets."""

    kind: Literal["ladder"] = "ladder"
    lanes: list[str] = Field(default_factory=new_list)
    events: list[LadderEvent] = Field(default_factory=new_list)
    text: str = ""


class Fact(_Body):
    """A sourced fact; ``as_`` says how it was read (a fact, a command's output, a file)."""

    kind: Literal["fact"] = "fact"
    as_: Literal["fact", "command", "file", "packets"] = "fact"
    text: str = ""
    highlight: list[int] = Field(default_factory=new_list)


class Traceback(_Body):
    """A check's own crash: its Python traceback."""

    kind: Literal["traceback"] = "traceback"
    text: str = ""


class Histogram(_Body):
    """Counts per time bucket and per class; ``text`` is the sparkline of each class."""

    kind: Literal["histogram"] = "histogram"
    columns: list[str] = Field(default_factory=new_list)
    rows: list[list[Any]] = Field(default_factory=new_list)
    text: str = ""


Body = Annotated[LogExcerpt | Table | Counters | Rules | Ladder | Fact | Traceback | Histogram,
                 Field(discriminator="kind")]


def _number(value: Any) -> float | int | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _counters(data: dict[str, Any]) -> tuple[list[Counter], dict[str, Any]]:
    """Either ``{"before": {name: n}, "after": {name: n}}`` or ``{name: {before, after, delta}}``
    (also under a ``counters`` key); anything else is extra."""
    before, after = data.get("before"), data.get("after")
    if isinstance(before, dict) and isinstance(after, dict):
        rows = []
        for name in dict.fromkeys([*before, *after]):
            b, a = _number(before.get(name)), _number(after.get(name))
            rows.append(Counter(name=str(name), before=b, after=a,
                                delta=a - b if a is not None and b is not None else None))
        return rows, {k: v for k, v in data.items() if k not in ("before", "after")}
    source = data["counters"] if isinstance(data.get("counters"), dict) else data
    rows, rest = [], {k: v for k, v in data.items() if k != "counters"} if source is not data else {}
    for name, value in source.items():
        if isinstance(value, dict) and ("delta" in value or "before" in value):
            b, a, d = _number(value.get("before")), _number(value.get("after")), _number(value.get("delta"))
            if d is None and a is not None and b is not None:
                d = a - b
            rows.append(Counter(name=str(name), before=b, after=a, delta=d))
        elif source is data:
            rest[name] = value
    return rows, rest


def _table(data: dict[str, Any]) -> tuple[list[str], list[list[Any]], dict[str, Any]] | None:
    """The first list of dict rows (columns: their keys in order of appearance), or of list
    rows under ``columns``."""
    columns = data.get("columns")
    for key, value in data.items():
        if not isinstance(value, list) or not value:
            continue
        if all(isinstance(r, dict) for r in value):
            cols: list[str] = []
            for row in value:
                cols += [str(k) for k in row if k not in cols]
            body = [[row.get(c, "") for c in cols] for row in value]
        elif all(isinstance(r, (list, tuple)) for r in value) and isinstance(columns, list):
            cols, body = [str(c) for c in columns], [list(r) for r in value]
        else:
            continue
        return cols, body, {k: v for k, v in data.items() if k not in (key, "columns")}
    return None


def _marked(data: dict[str, Any]) -> list[int]:
    raw = data.get("match", data.get("marked"))
    return [int(i) for i in raw if str(i).isdigit()] if isinstance(raw, list) else []


def _tabular(ev: Evidence, common: dict[str, Any]) -> Table | Counters:
    data = dict(ev.data)
    marked = _marked(data)
    found = _table(data)
    if found is not None:
        columns, rows, rest = found
        return Table(columns=columns, rows=rows, marked=marked, text=ev.text, **{**common, "extra": rest})
    counters, rest = _counters(data)
    if counters:
        return Counters(counters=counters, text=ev.text, **{**common, "extra": rest})
    return Table(marked=marked, text=ev.text, **{**common, "extra": data})


def body(ev: Evidence) -> Body:
    """The typed member of :data:`Body` for ``ev``, by its kind."""
    common: dict[str, Any] = {"title": ev.title, "source": ev.source, "extra": dict(ev.data)}
    kind = ev.kind
    if kind == "log":
        return LogExcerpt(text=ev.text, highlight=list(ev.highlight), **common)
    if kind == "table":
        return _tabular(ev, common)
    if kind == "counters":
        counters, rest = _counters(dict(ev.data))
        return Counters(counters=counters, text=ev.text, **{**common, "extra": rest})
    if kind == "rules":
        data = dict(ev.data)
        flags = [data.pop("whole", False), data.pop("ruleset", False)]
        whole = any(flags) or "ruleset" in ev.title.lower()
        table = _tabular(ev, common) if isinstance(ev.data.get("columns"), list) else None
        return Rules(text=ev.text, highlight=list(ev.highlight), whole=whole,
                     table=table if isinstance(table, Table) else None, **{**common, "extra": data})
    if kind == "ladder":
        return _ladder(ev, common)
    if kind == "traceback":
        return Traceback(text=ev.text, **common)
    if kind == "histogram":
        found = _table(dict(ev.data))
        columns, rows, rest = found if found is not None else ([], [], dict(ev.data))
        return Histogram(columns=columns, rows=rows, text=ev.text, **{**common, "extra": rest})
    return Fact(as_=kind, text=ev.text, highlight=list(ev.highlight), **common)


def _ladder(ev: Evidence, common: dict[str, Any]) -> Ladder:
    data = dict(ev.data)
    raw = data.pop("events", None)
    lanes = data.pop("lanes", None)
    events = []
    for item in raw if isinstance(raw, list) else []:
        try:
            events.append(LadderEvent.model_validate(item))
        except ValidationError:
            continue  # not an event: left out of the diagram, never a crash of the report
    fields: dict[str, Any] = {"events": events, "text": ev.text, **{**common, "extra": data}}
    if isinstance(lanes, list) and lanes:
        fields["lanes"] = [str(lane) for lane in lanes]
    return Ladder(**fields)


class RstReason(BaseModel):
    """One reset the server's kernel traced: the flow, the kernel's reason, the process."""

    model_config = ConfigDict(frozen=True)

    flow: str = ""
    reason: str = "?"
    comm: str = ""
    pid: int | None = None


def rst_reasons(ev: Evidence) -> list[RstReason]:
    """The kernel's reasons recorded with ``ev`` (its ``rst_reasons``), malformed entries left out."""
    out = []
    raw = ev.data.get("rst_reasons")
    for item in raw if isinstance(raw, list) else []:
        try:
            out.append(RstReason.model_validate(item))
        except ValidationError:
            continue
    return out
