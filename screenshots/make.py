"""Make the README screenshots: the real app, real checks, in the built-in demo scenario.

    .venv/bin/python screenshots/make.py [OUT_DIR]

Writes step1.svg, running.svg, evidence.svg, ladder.svg, summary.svg and export.svg. Needs
no root and no network: the demo is a loopback server that resets after each request.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from wizard.ui.app import ResetWizardApp

SIZE = (120, 40)


async def until(pilot, condition, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError(f"waited {timeout}s for {condition}")
        await pilot.pause(0.05)


async def shoot(pilot, out: Path, name: str) -> None:
    for widget in pilot.app.screen.query("Input, TextArea"):
        widget.cursor_blink = False
    await pilot.pause(0.2)
    pilot.app.save_screenshot(str(out / f"{name}.svg"))
    print("wrote", out / f"{name}.svg")


async def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    app = ResetWizardApp(demo=True, export_dir=Path("/tmp"))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.demo_scenario is not None and app.checklist is not None)
        await shoot(pilot, out, "step1")
        await pilot.press("enter")
        await until(pilot, lambda: app.session is not None)
        while type(app.screen).__name__ == "NoticeModal":
            await pilot.press("enter")
            await pilot.pause(0.1)
        await until(pilot, lambda: app.step_states.get("identify") not in (None, "pending", "running"))
        await pilot.press("ctrl+g")
        await until(pilot, lambda: app.screen.name == "step:handshake" and app.running)
        await shoot(pilot, out, "running")
        await until(pilot, lambda: app.screen.name == "summary" and not app.run_in_progress(), 120)
        await shoot(pilot, out, "summary")
        for key, name, shot in (("3", "step:server-logs", "evidence"), ("6", "step:handshake", "ladder")):
            await pilot.press(key)
            await until(pilot, lambda: app.screen.name == name)
            for view in app.screen.query("CheckView"):
                view.collapsed = view.state not in ("fail", "warn")
            await pilot.pause(0.3)
            if shot == "ladder":
                ladders = app.screen.query("Ladder")
                if ladders:
                    ladders.first().scroll_visible(animate=False, top=True)
            await shoot(pilot, out, shot)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: type(app.screen).__name__ == "ExportModal")
        await shoot(pilot, out, "export")
        await pilot.press("escape")


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent))
