"""`reset-wizard lab list | up NAME | down [NAME]` (I/O: prints, builds and removes labs)."""

from __future__ import annotations

import os
import shlex
import textwrap

from wizard.lab.build import Lab, down, lab_root, running
from wizard.lab.netns import LabError, lab_unavailable
from wizard.lab.scenarios import all_scenarios, by_id
from wizard.model import WizardError


def lab_list() -> int:
    for s in all_scenarios():
        where = f"IPv{s.family}, port {s.port}"
        print(f"{s.id}  ->  {s.cause}  ({where})")
        print(textwrap.indent(textwrap.fill(s.explanation, 92), "    "))
        print()
    up = running()
    if up:
        print("running: " + ", ".join(f"{st.name} ({st.scenario})" for st in up))
    return 0


def lab_up(name: str) -> int:
    try:
        scenario = by_id(name)
    except KeyError:
        raise WizardError("unknown scenario", f"{name!r}: `reset-wizard lab list` names them") from None
    reason = lab_unavailable()
    if reason:
        raise WizardError("no lab here", reason)
    try:
        lab = Lab(scenario).up()
    except LabError as exc:
        raise WizardError("lab failed", str(exc)) from None
    st = lab.state
    print(f"scenario:  {scenario.id} (expected cause: {scenario.cause})")
    print(textwrap.indent(textwrap.fill(scenario.explanation, 88), " " * 11))
    print(f"target:    {st.target}")
    print(f"--server:  netns:{st.server}")
    print(f"logs:      {', '.join(st.logs)}")
    print(f"client:    {st.client}   router: {st.router}   server: {st.server}")
    if st.error:
        print(f"the client saw: {st.error}")
    print("diagnose:  " + shlex.join(st.diagnose))
    print(f"down:      reset-wizard lab down {st.name}")
    return 0


def lab_down(name: str | None) -> int:
    if os.geteuid() != 0:
        raise WizardError("no lab here", "the lab needs root (network namespaces, veths, nftables)")
    removed = down(name)
    if not removed:
        print(f"nothing to remove{f' for {name}' if name else ''} under {lab_root()}")
        return 0
    for line in removed:
        print(f"removed {line}")
    return 0
