"""Handshake step, after the probes: the listener's master and its workers read again. A
worker that died during the probes (killed by its master for a timeout, by the kernel's OOM
killer, or by a crash) and was replaced is crash evidence even though the master's pid, the
one the listener shows, did not change."""

from __future__ import annotations

from wizard.diag.process.checks.settings import owner_fix, running_servers
from wizard.diag.process.io.tree import Tree, children
from wizard.engine.contract import Check, CheckContext, Findings, NoParams, register
from wizard.model import CheckResult, Status
from wizard.model.wording import plural


async def trees_before(ctx: CheckContext) -> dict[int, Tree]:
    """The masters' children as first seen (taken once, before the probes, by process.settings)."""

    async def read() -> dict[int, Tree]:
        run = await running_servers(ctx)
        return {c.pid: await children(ctx.server, c.pid) for c in run.configs}

    return await ctx.once("process.trees_before", read)


def _steady(pid: int, first: Tree, now: Tree, new: list[int]) -> bool:
    """Whether a child that ended was one of the master's steady workers: its command line
    is the master's (gunicorn, Apache), another child's (nginx's workers), or that of a child
    started since (its replacement). A child one of a kind (PostgreSQL's backend of one
    connection, its autovacuum worker) ends on its own; one whose command line is unknown
    counts, as every child did before command lines were read."""
    role = first.roles.get(pid)
    if not role:
        return True
    others = {r for q, r in first.roles.items() if q != pid} | {now.roles.get(n, "") for n in new}
    return role in others


def _pids(pids: list[int]) -> str:
    return ("worker pid " if len(pids) == 1 else "worker pids ") + ", ".join(map(str, pids))


@register
class ProcessWorkersCheck(Check[NoParams]):
    id = "process.workers"
    title = "The server's workers across the probes"
    step = "handshake"
    Params = NoParams
    reads_server = True
    emits = ("process.worker_replaced", "process.master_gone", "process.workers_stable")
    description = ("Lists the children of the listener's master before the probes and again after "
                   "them: a worker that vanished and was replaced while the probes ran is a crash "
                   "(a worker killed by its master or by the OOM killer), even with a stable master.")

    async def run(self, ctx: CheckContext, params: NoParams) -> CheckResult:
        f = Findings()
        run = await running_servers(ctx)
        if run.problem:
            return CheckResult.skipped(run.problem, "run with ss (iproute2) in the server context"
                                       if run.problem.startswith("cannot list") else owner_fix(ctx))
        if not run.configs:
            return f.result(Status.PASS, "the listener's process is no server whose workers this follows")
        before = await trees_before(ctx)
        replaced = 0
        for cfg in run.configs:
            first = before.get(cfg.pid)
            now = await children(ctx.server, cfg.pid)
            if first is None:
                continue
            if not now.alive:
                f.signal("process.master_gone", f"{cfg.component}: the master is gone after the probes")
                continue
            ended, new = sorted(first.children - now.children), sorted(now.children - first.children)
            gone = [pid for pid in ended if _steady(pid, first, now, new)]
            passing = sorted(set(ended) - set(gone))
            f.add(f"{cfg.component}: {plural(len(first.children), 'worker')} before the probes "
                  f"({', '.join(map(str, sorted(first.children))) or 'none'}), {len(now.children)} after"
                  + (f"; {_pids(passing)} ended, each one of a kind, neither the master's nor replaced "
                     "(a connection's own process, a periodic task): not counted" if passing else ""),
                  source=now.source, data={"before": sorted(first.children), "after": sorted(now.children),
                                           "not_counted": passing})
            if gone and new:
                replaced += 1
                f.signal("process.worker_replaced", f"{cfg.component}: {_pids(gone)} "
                         "ended during the probes and the master started "
                         f"{', '.join(map(str, new))} in their place ({now.source})")
            elif gone:
                f.signal("process.worker_replaced", f"{cfg.component}: {_pids(gone)} ended during the probes",
                         strength=0.6)
            elif first.children:
                f.signal("process.workers_stable", f"{cfg.component}: the same workers before and after "
                         "the probes", strength=0.5)
        status = Status.WARN if replaced or any(s.id == "process.master_gone" for s in f.signals) else Status.PASS
        return f.result(status, "workers replaced during the probes" if replaced else "workers unchanged")
