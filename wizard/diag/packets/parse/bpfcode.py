"""A BPF program that tests a port against a set, spliced into libpcap's own code (pure).

The second pass of ``analyze`` keeps the packets on a few hundred ports. Written as a
pcap filter, a search tree of that many comparisons takes libpcap's compiler and
optimiser 20 ms (and over a second for 1500 ports), on the path to the answer. Here
libpcap compiles a template instead, the same expression with one marker constant in
place of each set of ports (``tcp[0:2] = MARKER``): its code locates the ports exactly
as libpcap does for the capture's link type. Each ``jeq #MARKER`` is then replaced by a
binary search over the set, with the same two exits: "A is in the set" goes where "A ==
MARKER" went, the rest where the rest went. A comparison changes no register, so the
program keeps exactly the packets the written-out filter keeps.

The template is taken only when each marker appears in it as the constant of such
comparisons and nowhere else (else ``None``: the caller compiles the whole filter).
Classic BPF jumps only forward, a conditional jump by at most 255 instructions: the
program is laid out and every conditional jump too long for it is routed through an
unconditional one (``ja``, 32 bits) put right after it, until all fit.
"""

from __future__ import annotations

from dataclasses import dataclass

Insn = tuple[int, int, int, int]  # code, jt, jf, k: struct bpf_insn

JMP, JA, JEQ, JGE, K = 0x05, 0x00, 0x10, 0x30, 0x00
CLASS = 0x07
OP = 0xF0
JEQ_K, JGE_K, JA_CODE = JMP | JEQ | K, JMP | JGE | K, JMP | JA
LEAF = 2  # ports tested one by one at the leaves of the search
FAR = 255  # the longest conditional jump


@dataclass(eq=False)
class _Op:
    """One instruction, its jumps to other instructions (objects, not offsets yet)."""

    code: int
    k: int = 0
    jt: _Op | None = None  # conditional: taken; ja: the target
    jf: _Op | None = None


def _jumps(code: int) -> bool:
    return code & CLASS == JMP


def _conditional(code: int) -> bool:
    return _jumps(code) and code & OP != JA


def _ops(insns: list[Insn]) -> list[_Op]:
    """The program as objects; every jump aimed at an instruction (None: out of the program)."""
    ops = [_Op(code, k) for code, _jt, _jf, k in insns]
    for i, (code, jt, jf, k) in enumerate(insns):
        if not _jumps(code):
            continue
        if code & OP == JA:
            ops[i].jt = ops[i + 1 + k] if i + 1 + k < len(ops) else None
        else:
            ops[i].jt = ops[i + 1 + jt] if i + 1 + jt < len(ops) else None
            ops[i].jf = ops[i + 1 + jf] if i + 1 + jf < len(ops) else None
        if ops[i].jt is None or (code & OP != JA and ops[i].jf is None):
            raise ValueError(f"instruction {i} jumps out of the program")
    return ops


def _search(ports: list[int], hit: _Op, miss: _Op) -> list[_Op]:
    """Instructions that go to ``hit`` when A is in ``ports`` (sorted, distinct), else to
    ``miss``: a binary search, ``LEAF`` equality tests at its leaves."""
    if len(ports) <= LEAF:
        out = [_Op(JEQ_K, port, hit, None) for port in ports]
        for i, op in enumerate(out):
            op.jf = out[i + 1] if i + 1 < len(out) else miss
        return out
    m = len(ports) // 2
    left, right = _search(ports[:m], hit, miss), _search(ports[m:], hit, miss)
    return [_Op(JGE_K, ports[m], right[0], left[0]), *left, *right]


def splice(insns: list[Insn], sets: dict[int, list[int]]) -> list[Insn] | None:
    """``insns`` (libpcap's code of a template) with each ``jeq #marker`` turned into a test of
    A against ``sets[marker]``; None when a marker is missing, or its constant is used by any
    other instruction (the template is then not what this expects)."""
    try:
        ops = _ops(insns)
    except (ValueError, IndexError):
        return None
    markers = {op.k for op in ops if op.code == JEQ_K and op.k in sets}
    if markers != set(sets) or any(op.k in sets and op.code != JEQ_K for op in ops):
        return None
    if any(not ports or ports != sorted(set(ports)) for ports in sets.values()):
        return None
    out: list[_Op] = []
    for op in ops:
        if op.code == JEQ_K and op.k in sets:
            assert op.jt is not None and op.jf is not None
            tree = _search(sets[op.k], op.jt, op.jf)
            _aim(ops, op, tree[0])
            out += tree
        else:
            out.append(op)
    return _lay_out(out)


def _aim(ops: list[_Op], old: _Op, new: _Op) -> None:
    """Every jump to ``old`` goes to ``new`` instead."""
    for op in ops:
        if op.jt is old:
            op.jt = new
        if op.jf is old:
            op.jf = new


def _lay_out(ops: list[_Op]) -> list[Insn]:
    """Offsets for every jump; each conditional jump too long routed through a ``ja`` put
    right after it (the layout done again until none is)."""
    while True:
        where = {id(op): i for i, op in enumerate(ops)}
        longer: list[_Op] = []
        for op in ops:
            longer.append(op)
            if not _conditional(op.code):
                continue
            assert op.jt is not None and op.jf is not None
            here = where[id(op)]
            far_t, far_f = where[id(op.jt)] - here - 1 > FAR, where[id(op.jf)] - here - 1 > FAR
            if far_t or far_f:
                # A conditional jump of at most two (to the ja's right after it) stays short
                hops = [_Op(JA_CODE, 0, target) for far, target in ((far_t, op.jt), (far_f, op.jf)) if far]
                op.jt = hops[0] if far_t else op.jt
                op.jf = hops[-1] if far_f else op.jf
                longer += hops
        if len(longer) == len(ops):
            return [_encode(op, where) for op in ops]
        ops = longer


def _encode(op: _Op, where: dict[int, int]) -> Insn:
    here = where[id(op)]
    if not _jumps(op.code):
        return op.code, 0, 0, op.k
    assert op.jt is not None
    if op.code & OP == JA:
        return op.code, 0, 0, where[id(op.jt)] - here - 1
    assert op.jf is not None
    return op.code, where[id(op.jt)] - here - 1, where[id(op.jf)] - here - 1, op.k
