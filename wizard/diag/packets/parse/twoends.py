"""The two-ended proof (pure): one capture near the client, one near the server, the same RSTs.

Flows are matched across the captures by their initial sequence numbers (which NAT keeps)
and, failing those, by the server's port and the client's port. An RST is matched by its
direction and sequence number, and each RST is paired once at most (a flow can carry two
with one sequence number: an application's abort and then the kernel's answer to the bytes
already on their way). Toward the client: seen at both ends, the server sent it; at the
client only, something between the two capture points injected it; at the server only, it
was lost on the way. Toward the server the same with the roles turned.
"""

from __future__ import annotations

from dataclasses import dataclass

from wizard.diag.packets.parse.flows import Flow, Sighting
from wizard.model.wording import plural

Match = tuple[int | None, int | None, int, int]


@dataclass(frozen=True)
class Verdict:
    proof: str  # sent | injected | lost | not-covered
    detail: str
    other: Sighting | None  # the same RST in the other capture


def _flow_keys(flow: Flow) -> list[tuple[object, ...]]:
    keys: list[tuple[object, ...]] = []
    if flow.client_isn is not None and flow.server_isn is not None:
        keys.append(("isn", flow.client_isn, flow.server_isn))
    if flow.client_isn is not None:
        keys.append(("syn", flow.client_isn))
    keys.append(("ports", flow.key[1], flow.key[3]))
    return keys


class FlowIndex:
    """The flows of one capture, findable by the keys that survive NAT."""

    def __init__(self, flows: list[Flow], sightings: list[Sighting]) -> None:
        self.by_key: dict[tuple[object, ...], Flow] = {}
        for flow in flows:
            for key in _flow_keys(flow):
                self.by_key.setdefault(key, flow)
        self.rsts: dict[int, list[Sighting]] = {}
        for s in sightings:
            self.rsts.setdefault(id(s.flow), []).append(s)

    def find(self, flow: Flow) -> Flow | None:
        return next((self.by_key[k] for k in _flow_keys(flow) if k in self.by_key), None)

    def same_rst(self, flow: Flow, s: Sighting, paired: set[int]) -> Sighting | None:
        """The first RST of ``flow`` in this capture that is ``s`` and not in ``paired`` (the
        ids of the RSTs paired so far)."""
        return next((o for o in self.rsts.get(id(flow), []) if id(o) not in paired and o.toward == s.toward
                     and o.rst.seq == s.rst.seq), None)


def judge(s: Sighting, here: str, there: FlowIndex, paired: set[int]) -> Verdict:
    """Where the RST ``s``, seen in the capture near ``here`` (client|server), came from.
    ``paired``: the ids of the RSTs of either capture paired so far; a pair found is added."""
    other_flow = there.find(s.flow)
    far = "server" if here == "client" else "client"
    if other_flow is None:
        return Verdict("not-covered", f"the {far}-side capture does not have this flow", None)
    twin = there.same_rst(other_flow, s, paired)
    arriving = s.toward == here  # the RST was going to the end this capture is near
    if twin is not None:
        paired.update((id(s), id(twin)))
        sender = far if arriving else here
        return Verdict("sent", f"seen at both ends (seq {s.rst.seq}): the {sender} sent it and it arrived", twin)
    if arriving:
        return Verdict("injected", f"seen near the {here} but never near the {far}, whose capture has this flow "
                       f"({plural(other_flow.packets, 'packet')}): injected between the two capture points", None)
    return Verdict("lost", f"left the {here} but never reached the {far}, whose capture has this flow "
                   f"({plural(other_flow.packets, 'packet')}): dropped on the way", None)
