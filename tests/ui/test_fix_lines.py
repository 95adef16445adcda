"""The TUI's fix lines are commands to paste, built from the session's real inputs: the
verdict's Unknowns, a check's result and the skipped-checks notice give the wizard's own
option as this run's whole command line (target, context, evidence sources) with it."""

from __future__ import annotations

import shlex

from textual.widgets import Input, Static

from tests.ui.helpers import SIZE, make_app, until
from tests.ui.scripted import ScriptedEngine, abortive_close_results
from wizard.model import CheckResult
from wizard.ui.backend import Skip
from wizard.ui.screens.modals import NoticeModal
from wizard.ui.widgets.checkview import CheckView, result_text

TRACEFS = "mount -t tracefs nodev /sys/kernel/tracing (or let the wizard mount it: --allow-tracefs-mount)"
RERUN = "reset-wizard diagnose 127.0.0.1:8080 --server netns:x --allow-tracefs-mount"


def _engine() -> ScriptedEngine:
    results = abortive_close_results()
    results["app-errors"].append(CheckResult.skipped("tracefs is not mounted in the server context", TRACEFS,
                                                     check_id="kernel.resets"))
    return ScriptedEngine(results)


async def _run_all_in_netns(pilot) -> None:
    app = pilot.app
    await until(pilot, lambda: app.checklist is not None)
    await pilot.click("#target")
    await pilot.press(*"127.0.0.1:8080")
    app.screen.query_one("#server", Input).value = "netns:x"
    await pilot.press("ctrl+g")
    await until(pilot, lambda: app.screen.name == "summary" and not app.run_in_progress())
    await pilot.pause()


async def test_the_or_line_is_the_whole_rerun_command_of_this_session() -> None:
    app = make_app(_engine())
    async with app.run_test(size=(160, 48)) as pilot:
        await _run_all_in_netns(pilot)
        text = str(app.screen.query_one(".unknowns", Static).render())
        lines = [line.strip() for line in text.splitlines()]
        assert "to run it: mount -t tracefs nodev /sys/kernel/tracing" in lines
        assert f"or: {RERUN}  (let the wizard mount it)" in lines
        assert shlex.split(RERUN)[-1] == "--allow-tracefs-mount"
        assert not any(line == "or: --allow-tracefs-mount" or line.startswith("or: --") for line in lines)
        # the check's own result and its copy say the same
        await pilot.press("5")  # step 5, the application's errors
        await until(pilot, lambda: app.screen.name == "step:app-errors")
        (view,) = [v for v in app.screen.query(CheckView) if v.result is not None and v.result.id == "kernel.resets"]
        view.collapsed = False
        await until(pilot, lambda: bool(view.query(".result-fix")))
        shown = str(view.query_one(".result-fix", Static).render())
        assert f"or: {RERUN}" in shown and shown.startswith("to run it: mount -t tracefs")
        assert f"or: {RERUN}  # let the wizard mount it" in result_text(view.result, app.session.rerun_argv())


async def test_the_skipped_checks_notice_gives_the_rerun_command_too() -> None:
    skip = Skip("app-errors", "kernel.counters", "Kernel counters", "needs root (server side)",
                "run as root: sudo reset-wizard ... (or grant cap_net_raw,cap_net_admin)")
    app = make_app(ScriptedEngine(skips=[skip], root_skips=[skip]))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.checklist is not None)
        await pilot.click("#target")
        await pilot.press(*"127.0.0.1:8080", "enter")
        await until(pilot, lambda: isinstance(app.screen, NoticeModal))
        text = str(app.screen.query_one(".notice-body Static", Static).render())
        assert "to run it: sudo reset-wizard diagnose 127.0.0.1:8080  (run as root)" in text
        assert "or: grant cap_net_raw,cap_net_admin" in text
