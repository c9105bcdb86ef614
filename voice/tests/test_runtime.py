"""Per-call database threads: a call's agent work in order, never queued behind another's."""

import asyncio
import threading

from voice import runtime


class SlowAgent:
    """Stands in for the Django agent: respond() blocks until released."""

    def __init__(self, release: threading.Event | None = None):
        self.release = release
        self.threads: list[int] = []
        self.language = "en"

    def _reply(self, text):
        from voice.agent import AgentReply

        return AgentReply(text=text, language="en")

    def greet(self):
        self.threads.append(threading.get_ident())
        return self._reply("Hello")

    def respond(self, text, *, confidence=None):
        self.threads.append(threading.get_ident())
        if self.release is not None:
            assert self.release.wait(5)
        return self._reply(f"heard {text}")


def test_one_calls_slow_turn_does_not_hold_up_another_call():
    release = threading.Event()
    slow, quick = SlowAgent(release), SlowAgent()
    slow_thread, quick_thread = runtime.borrow_db_thread(), runtime.borrow_db_thread()

    async def scenario():
        loop_thread = threading.get_ident()
        blocked = asyncio.ensure_future(
            runtime.AgentAdapter(slow, slow_thread).respond("a", language="en", confidence=0.9)
        )
        await asyncio.sleep(0.05)
        # The other call answers while the first one's turn is still running.
        turn = await asyncio.wait_for(
            runtime.AgentAdapter(quick, quick_thread).respond("b", language="en", confidence=0.9),
            timeout=2,
        )
        assert not blocked.done()
        release.set()
        await blocked
        return loop_thread, turn

    loop_thread, turn = asyncio.run(scenario())
    assert turn.text == "heard b"
    assert loop_thread not in slow.threads + quick.threads  # never on the event loop
    assert slow.threads[0] != quick.threads[0]
    runtime.return_db_thread(slow_thread)
    runtime.return_db_thread(quick_thread)


def test_a_calls_database_work_runs_on_one_thread_in_order():
    agent = SlowAgent()
    executor = runtime.borrow_db_thread()

    async def scenario():
        adapter = runtime.AgentAdapter(agent, executor)
        await adapter.greet()
        for text in ("one", "two", "three"):
            await adapter.respond(text, language="en", confidence=0.9)

    asyncio.run(scenario())
    assert len(set(agent.threads)) == 1
    runtime.return_db_thread(executor)
    assert runtime.borrow_db_thread() is executor  # idle threads are reused
    runtime.return_db_thread(executor)
