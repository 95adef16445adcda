"""nftables rulesets into values: ``nft -j list ruleset`` for structure, ``nft -a list ruleset`` for quotes.

Pure: no I/O; never raises on bad input (see ``Ruleset.problems``).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from wizard.diag.firewall.parse.rules import (
    LIMIT_MATCHES,
    Chain,
    NamedMap,
    NamedSet,
    Rule,
    Ruleset,
    Selector,
    Verdict,
)


def _text(value: Any) -> str:
    """An nft JSON right-hand side as nft's text would write it."""
    if isinstance(value, dict):
        if "set" in value:
            return ",".join(_text(v) for v in value["set"]) if isinstance(value["set"], list) else "?"
        if "range" in value and isinstance(value["range"], list) and len(value["range"]) == 2:
            return f"{_text(value['range'][0])}-{_text(value['range'][1])}"
        if "prefix" in value and isinstance(value["prefix"], dict):
            return f"{value['prefix'].get('addr')}/{value['prefix'].get('len')}"
        return "?"
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    return str(value)


def _values(value: Any) -> tuple[str, ...]:
    if isinstance(value, dict) and isinstance(value.get("set"), list):
        return tuple(_text(v) for v in value["set"])
    if isinstance(value, list):
        return tuple(_text(v) for v in value)
    return (_text(value),)


def _selector(m: dict[str, Any]) -> list[Selector]:
    left, right, op = m.get("left"), m.get("right"), m.get("op", "==")
    op = "!=" if op == "!=" else "=="
    vals = _values(right)
    if isinstance(left, dict) and isinstance(left.get("payload"), dict):
        proto, fld = left["payload"].get("protocol"), left["payload"].get("field")
        if fld in ("dport", "sport"):
            out = [Selector(fld, op, vals)]
            if proto in ("tcp", "udp", "sctp", "dccp", "udplite"):
                out.append(Selector("proto", "==", (proto,)))
            return out
        if fld in ("saddr", "daddr") and proto in ("ip", "ip6"):
            return [Selector(fld, op, vals), Selector("nfproto", "==", ("ipv4" if proto == "ip" else "ipv6",))]
        if fld in ("protocol", "nexthdr") and proto in ("ip", "ip6"):
            return [Selector("proto", op, vals)]
        if proto in ("tcp", "udp"):  # tcp flags and the like: condition within the protocol
            return [Selector("proto", "==", (proto,)), Selector("other", op, (f"{proto} {fld}",))]
    if isinstance(left, dict) and isinstance(left.get("meta"), dict):
        key = left["meta"].get("key")
        if key == "l4proto":
            return [Selector("proto", op, vals)]
        if key in ("iif", "iifname"):
            return [Selector("iif", op, vals)]
        if key == "nfproto":
            return [Selector("nfproto", op, vals)]
    if isinstance(left, dict) and isinstance(left.get("ct"), dict) and left["ct"].get("key") == "state":
        return [Selector("ct state", op, vals)]
    return [Selector("other", op, (json.dumps(m, sort_keys=True)[:120],))]


def _key_field(key: Any) -> str:
    """The Selector field a map key (the left side of ``vmap``) stands for; "other" if unknown."""
    if isinstance(key, dict):
        if isinstance(key.get("payload"), dict):
            fld, proto = key["payload"].get("field"), key["payload"].get("protocol")
            if fld in ("dport", "sport", "saddr", "daddr"):
                return fld
            if fld in ("protocol", "nexthdr") and proto in ("ip", "ip6"):
                return "proto"
        if isinstance(key.get("meta"), dict):
            return {"l4proto": "proto", "iif": "iif", "iifname": "iif",
                    "nfproto": "nfproto"}.get(str(key["meta"].get("key")), "other")
        if isinstance(key.get("ct"), dict) and key["ct"].get("key") == "state":
            return "ct state"
    return "other"


def _verdict_of(value: Any) -> tuple[str, str]:
    """A map entry's verdict (``{"jump": {"target": "svc"}}``) as (verdict, target)."""
    if isinstance(value, dict) and len(value) == 1:
        kind, arg = next(iter(value.items()))
        if kind in ("accept", "drop", "return", "continue"):
            return kind, ""
        if kind in ("jump", "goto") and isinstance(arg, dict):
            return kind, str(arg.get("target", "?"))
    return "none", _text(value)[:40]


def _entries(elem: Any) -> tuple[tuple[str, str, str], ...]:
    out = []
    for pair in elem if isinstance(elem, list) else []:
        if isinstance(pair, list) and len(pair) == 2:
            first = pair[0]
            key = first.get("elem", {}).get("val", first) if isinstance(first, dict) and "elem" in first else first
            out.append((_text(key), *_verdict_of(pair[1])))
    return tuple(out)


def _limit_text(lim: dict[str, Any]) -> str:
    over = "over " if lim.get("inv") else ""
    unit = f" {lim['rate_unit']}" if lim.get("rate_unit") not in (None, "packets") else ""
    return f"limit rate {over}{lim.get('rate')}{unit}/{lim.get('per', 'second')}"


def _reject_with(val: Any) -> str:
    if isinstance(val, dict) and val.get("type") == "tcp reset":
        return "tcp reset"
    # nft's default reject answers TCP with ICMP port unreachable, not a reset.
    kind = val.get("type", "icmp") if isinstance(val, dict) else "icmp"
    code = val.get("expr", "port-unreachable") if isinstance(val, dict) else "port-unreachable"
    return f"{kind} {code}"


def _limit_statement(kind: str, val: dict[str, Any]) -> str:
    """A limit, a meter (with the limit or ct count it applies) or a ct count, as nft writes it."""
    if kind == "limit":
        return _limit_text(val)
    if kind == "meter":
        stmt: dict[str, Any] = val["stmt"] if isinstance(val.get("stmt"), dict) else {}
        inner = f" ({_limit_text(stmt['limit'])})" if isinstance(stmt.get("limit"), dict) else (
            f" (ct count {'over ' if stmt['ct count'].get('inv') else ''}{stmt['ct count'].get('val')})"
            if isinstance(stmt.get("ct count"), dict) else "")
        return f"meter {val.get('name', '?')}{inner}"
    return f"ct count {'over ' if val.get('inv') else ''}{val.get('val')}"


def _nft_rule(r: dict[str, Any]) -> Rule:
    sels: list[Selector] = []
    limits: list[str] = []
    verdict: Verdict = "none"
    target = reject_with = ""
    packets = nbytes = None
    opaque = False
    vmap_key = vmap_ref = ""
    vmap: tuple[tuple[str, str, str], ...] = ()
    for e in r.get("expr") or []:
        if not isinstance(e, dict) or not e:
            continue
        kind, val = next(iter(e.items()))
        if kind == "match" and isinstance(val, dict):
            sels += _selector(val)
        elif kind == "counter" and isinstance(val, dict):
            packets, nbytes = int(val.get("packets", 0)), int(val.get("bytes", 0))
        elif kind in ("accept", "drop", "return"):
            verdict = kind
        elif kind in ("jump", "goto") and isinstance(val, dict):
            verdict, target = kind, str(val.get("target", ""))
        elif kind == "reject":
            verdict, reject_with = "reject", _reject_with(val)
        elif kind in ("limit", "meter", "ct count") and isinstance(val, dict):
            limits.append(_limit_statement(kind, val))
        elif kind == "xt" and isinstance(val, dict):
            opaque = True
            name = str(val.get("name", "?"))
            if val.get("type") == "target":
                if name == "REJECT":
                    verdict, reject_with = "reject", "?"
                elif name in ("ACCEPT", "DROP", "RETURN"):
                    verdict = name.lower()  # type: ignore[assignment]
                else:
                    target = name
            elif name in LIMIT_MATCHES:
                limits.append(name)
            else:
                sels.append(Selector("other", "==", (f"xt match {name}",)))
        elif kind == "vmap" and isinstance(val, dict):
            vmap_key = _key_field(val.get("key"))
            data = val.get("data")
            if isinstance(data, str) and data.startswith("@"):
                vmap_ref = data[1:]
            elif isinstance(data, dict) and isinstance(data.get("set"), list):
                vmap = _entries(data["set"])
            else:
                sels.append(Selector("other", "==", ("verdict map not understood",)))
        elif kind == "queue":
            target = "queue"
        elif kind in ("dnat", "redirect") and isinstance(val, dict):
            # A port forward: where the connection really goes (nft's JSON: addr, port).
            addr, to_port = _text(val.get("addr", "")), val.get("port", "")
            where = f"[{addr}]" if ":" in addr else addr
            target = f"{kind} to {where}" + (f":{_text(to_port)}" if to_port != "" else "")
    return Rule("nft", str(r.get("family", "?")), str(r.get("table", "?")), str(r.get("chain", "?")),
                int(r.get("handle", 0) or 0), verdict=verdict, target=target, reject_with=reject_with,
                packets=packets, bytes=nbytes, selectors=tuple(sels), limits=tuple(limits), opaque=opaque,
                vmap_key=vmap_key, vmap=vmap, vmap_ref=vmap_ref)


# Objects of a ruleset listing that do not decide a verdict by themselves.
_OTHER_OBJECTS = {"metainfo", "table", "element", "flowtable", "counter", "quota",
                  "ct helper", "limit", "ct timeout", "ct expectation", "secmark", "synproxy"}


def parse_nft_json(text: str, listing: str = "") -> Ruleset:
    """``nft -j list ruleset``; ``listing`` (``nft -a list ruleset``) supplies the exact rule text."""
    rs = Ruleset()
    try:
        doc = json.loads(text)
        items = doc["nftables"] if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise ValueError("no 'nftables' list")
    except (ValueError, KeyError, TypeError) as exc:
        rs.problems.append(f"nft JSON unreadable: {str(exc)[:120]}")
        return rs
    texts = parse_nft_text(listing) if listing else {}
    for item in items:
        try:
            if not isinstance(item, dict) or len(item) != 1:
                raise ValueError(f"unexpected item {str(item)[:60]}")
            kind, obj = next(iter(item.items()))
            if kind not in ("chain", "rule", "set", "map") and kind not in _OTHER_OBJECTS:
                raise ValueError(f"unknown object {kind[:30]!r}")
            if kind == "chain":
                rs.add_chain(Chain("nft", str(obj["family"]), str(obj["table"]), str(obj["name"]),
                                   str(obj.get("hook", "")), int(obj.get("prio", 0) or 0),
                                   str(obj.get("policy", "accept" if "hook" in obj else "")),
                                   str(obj.get("type", ""))))
            elif kind == "rule":
                rule = _nft_rule(obj)
                line = texts.get((rule.family, rule.table, rule.chain, rule.handle), "")
                rs.add_rule(replace(rule, text=line or f"(handle {rule.handle}, text not listed)"))
            elif kind == "map":
                flags = obj.get("flags", [])
                rs.maps[(str(obj["family"]), str(obj["table"]), str(obj["name"]))] = NamedMap(
                    _entries(obj.get("elem", [])) if obj.get("map") == "verdict" else (),
                    bool({"dynamic", "timeout"} & set(flags if isinstance(flags, list) else [flags])))
            elif kind == "set":
                elem = obj.get("elem", [])
                flags = obj.get("flags", [])
                dynamic = bool({"dynamic", "timeout"} & set(flags if isinstance(flags, list) else [flags]))
                rs.sets[(str(obj["family"]), str(obj["table"]), str(obj["name"]))] = NamedSet(
                    tuple(_text(e.get("elem", {}).get("val", "?") if isinstance(e, dict) and "elem" in e else e)
                          for e in (elem if isinstance(elem, list) else [elem])), dynamic)
        except (KeyError, TypeError, ValueError, AttributeError, StopIteration) as exc:
            rs.problems.append(f"nft JSON item skipped ({type(exc).__name__}: {str(exc)[:80]})")
    return rs


_TABLE_RE = re.compile(r"^table\s+(\S+)\s+(\S+)\s*\{")
_CHAIN_RE = re.compile(r"^\s*chain\s+(\S+)\s*\{")
_HANDLE_RE = re.compile(r"\s+# handle (\d+)\s*$")


def parse_nft_text(text: str) -> dict[tuple[str, str, str, int], str]:
    """``nft -a list ruleset``: (family, table, chain, handle) -> the rule's line without the handle comment."""
    out: dict[tuple[str, str, str, int], str] = {}
    family = table = chain = ""
    for raw in text.splitlines():
        if m := _TABLE_RE.match(raw):
            family, table, chain = m.group(1), m.group(2), ""
            continue
        if m := _CHAIN_RE.match(raw):
            chain = m.group(1)
            continue
        h = _HANDLE_RE.search(raw)
        if h and chain and not raw.lstrip().startswith(("chain ", "set ", "map ", "table ")):
            out[(family, table, chain, int(h.group(1)))] = raw[: h.start()].strip()
    return out

