"""How the `reset-wizard` process answers ending signals: in start-up, during a run, and when
something is stuck. Each case runs in a child process of its own (they end it with
os._exit, as the real command does)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def child(code: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_a_keyboard_interrupt_raised_in_a_finalizer_is_lost_but_start_up_ends_anyway() -> None:
    # Why start-up does not rely on KeyboardInterrupt: a signal handled while a finalizer
    # runs raises there, and Python prints "Exception ignored" and goes on. With the default
    # handler the program below would finish its sleep and print "went on".
    program = """
        import os, signal, sys, time
        {install}
        class Finalized:
            def __del__(self):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)  # the handler runs here, inside the finalizer
        Finalized()
        time.sleep(1.0)
        print("went on")
    """
    lost = child(program.format(install="pass"))
    assert "went on" in lost.stdout and "Exception ignored" in lost.stderr, lost
    ended = child(program.format(install=(
        "import wizard.entry as entry\n"
        "        signal.signal(signal.SIGINT, entry._exit_in_start_up)")))
    assert ended.returncode == 3, ended
    assert "went on" not in ended.stdout
    assert ended.stderr == ("reset-wizard: interrupted by SIGINT during start-up: "
                            "nothing was probed or written\n")


RUN_IGNORING_CANCELLATION = """
    import asyncio, os, signal, sys, time
    from wizard import entry
    from wizard.cli import signals
    entry.CLI_PROCESS = True
    signals.BACKSTOP_S = {backstop}

    async def stubborn():
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            print("cancelled", flush=True)
            await asyncio.sleep({after})  # a cleanup that does not end
            print("cleaned up", flush=True)

    async def body():
        task = asyncio.ensure_future(stubborn())
        with signals.cancel_on_signals(task) as caught:
            for i, sig in enumerate({signals_sent}):
                loop = asyncio.get_running_loop()
                loop.call_later(0.2 + 0.5 * i, os.kill, os.getpid(), sig)
            await task
            caught.finished(1)
        print("done", flush=True)
        return 1

    sys.exit(signals.run_async(body()))
"""


def test_a_second_signal_ends_the_process_at_once() -> None:
    start = time.monotonic()
    done = child(RUN_IGNORING_CANCELLATION.format(backstop=20, after=20,
                                                  signals_sent="(signal.SIGTERM, signal.SIGINT)"))
    assert time.monotonic() - start < 10
    assert done.returncode == 3, done
    assert done.stdout.splitlines() == ["cancelled"]
    assert "reset-wizard: SIGINT again: stopped at once, without writing what was gathered" in done.stderr


def test_a_run_stuck_after_the_signal_ends_itself_and_says_where_it_was(tmp_path: Path) -> None:
    import os

    done = subprocess.run([sys.executable, "-c", textwrap.dedent(RUN_IGNORING_CANCELLATION.format(
        backstop=0.5, after=20, signals_sent="(signal.SIGHUP,)"))], cwd=ROOT, capture_output=True, text=True,
        timeout=30, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert done.returncode == 3, done
    assert done.stdout.splitlines() == ["cancelled"]
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("reset-wizard: still running 0.5s after SIGHUP: stopped without waiting for the rest "
                           "(where it was stuck: "), line
    crash = Path(line.split("stuck: ", 1)[1].rstrip(")"))
    assert crash.parent == tmp_path
    stacks = crash.read_text()
    assert "did not stop within 0.5s" in stacks and "Current thread" in stacks


def test_signals_after_the_verdict_exit_with_the_runs_own_status() -> None:
    program = """
        import asyncio, os, signal, sys, time
        from wizard import entry
        from wizard.cli import signals
        entry.CLI_PROCESS = True

        async def body():
            task = asyncio.ensure_future(asyncio.sleep(0))
            with signals.cancel_on_signals(task) as caught:
                await task
                caught.finished(1)
            os.kill(os.getpid(), signal.SIGTERM)  # as the interpreter would shut down
            time.sleep(5)
            return 0

        sys.exit(signals.run_async(body()))
    """
    start = time.monotonic()
    done = child(program)
    assert done.returncode == 1, done
    assert time.monotonic() - start < 4


def test_a_signal_as_the_run_hands_over_to_its_ending_handlers_never_meets_the_default_action() -> None:
    # The main thread blocks the signals while the loop's handlers give way to the ending ones;
    # a signal that comes then goes to another thread, where the default action (death by
    # SIGTERM, exit -15) would apply if the handover ever went through it. Here a thread sends
    # SIGTERM the moment any ending signal is set to its default action.
    program = """
        import asyncio, os, signal, sys, threading
        from wizard import entry
        from wizard.cli import signals
        entry.CLI_PROCESS = True
        go, sent = threading.Event(), threading.Event()

        def sender():
            go.wait()
            os.kill(os.getpid(), signal.SIGTERM)
            sent.set()

        threading.Thread(target=sender, daemon=True).start()
        real = signal.signal

        def watched(sig, handler):
            old = real(sig, handler)
            if handler is signal.SIG_DFL and sig in entry.ENDING and not go.is_set():
                go.set()
                sent.wait(5)
            return old

        signal.signal = watched

        async def body():
            task = asyncio.ensure_future(asyncio.sleep(0))
            with signals.cancel_on_signals(task) as caught:
                await task
                caught.finished(1)
            if not go.is_set():  # the handover is over: the signal comes now
                go.set()
                sent.wait(5)
            await asyncio.sleep(5)
            return 0

        sys.exit(signals.run_async(body()))
    """
    done = child(program)
    assert done.returncode == 1, done


def test_run_async_does_not_wait_for_a_worker_thread_a_cancelled_call_left_behind() -> None:
    from wizard.cli.signals import run_async

    release = threading.Event()

    async def body() -> str:
        worker = asyncio.ensure_future(asyncio.to_thread(release.wait, 20))
        await asyncio.sleep(0.05)
        worker.cancel()  # the awaiting side gives up; the thread is still blocked in wait()
        return "verdict"

    start = time.monotonic()
    try:
        assert run_async(body()) == "verdict"
        took = time.monotonic() - start
    finally:
        release.set()  # let the thread end (asyncio.run would have waited for it)
    assert took < 2.0, took


def test_run_async_learns_of_ended_commands_by_pidfd_and_gives_the_default_watcher_back() -> None:
    import os

    from wizard.cli.signals import run_async

    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        import pytest

        pytest.skip("no pidfds here: the default watcher serves the run")

    async def spawn() -> tuple[str, list[int], list[str]]:
        watcher = type(asyncio.get_child_watcher()).__name__
        procs = [await asyncio.create_subprocess_exec(sys.executable, "-c", f"raise SystemExit({n})")
                 for n in (0, 3)]
        codes = [await p.wait() for p in procs]
        return watcher, codes, [t.name for t in threading.enumerate()]

    watcher, codes, threads = run_async(spawn())
    assert watcher == "PidfdChildWatcher" and codes == [0, 3]
    assert not [t for t in threads if t.startswith("waitpid-")]  # no thread per command
    # afterwards (another loop, another thread) the policy's default serves again
    assert type(asyncio.get_child_watcher()).__name__ == "ThreadedChildWatcher"

    def in_thread(out: list[int]) -> None:
        async def one() -> int:
            return await (await asyncio.create_subprocess_exec("true")).wait()
        out.append(asyncio.run(one()))

    got: list[int] = []
    worker = threading.Thread(target=in_thread, args=(got,))
    worker.start()
    worker.join(10)
    assert got == [0]
