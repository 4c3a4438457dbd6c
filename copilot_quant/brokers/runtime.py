"""The one event loop that drives ib_async: a library-owned asyncio loop on one daemon thread.

Threading contract
------------------
ib_async is single-threaded: its socket, its caches and its events belong to the asyncio loop that
runs it, and it only processes incoming messages (ticks, order status, executions, disconnects) while
that loop runs. An :class:`IBRuntime` therefore starts **one** asyncio loop on **one** daemon thread and
keeps it running for as long as the runtime is open. *Every* ib_async call is performed on that thread:

* from any other thread, use :meth:`IBRuntime.run` (await a coroutine on the loop, block the caller up
  to ``timeout`` seconds) or :meth:`IBRuntime.call` (run a plain function on the loop and return its
  result);
* ib_async event handlers (``pendingTickersEvent``, ``execDetailsEvent`` …) run *on* the loop thread and
  must never block; they hand data to other threads through locks and ``threading.Event``\\ s, or run
  ib_async coroutines with :meth:`IBRuntime.run_eager` (at once, as far as they get without waiting).

Because the loop is always running, the user's thread may ``time.sleep()`` freely while ticks, fills and
reconnects are processed in the background — the guide's main loop does exactly that.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from copilot_quant.errors import BrokerError

__all__ = ["IBRuntime"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class IBRuntime:
    """Owns one asyncio loop running forever on one daemon thread; all ib_async work is marshalled onto it.

    The runtime is started lazily by :meth:`start` (idempotent) and stopped by :meth:`close`; it can be
    started again after closing. It never connects to anything by itself.
    """

    __slots__ = ("_loop", "_name", "_ready", "_start_lock", "_tasks", "_thread")

    def __init__(self, name: str = "copilot-quant-ib") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_lock = threading.Lock()
        self._tasks: set[asyncio.Task[Any]] = (
            set()
        )  # :meth:`start_task`'s, held until done (the loop's are weak)

    # ------------------------------------------------------------------ lifecycle
    @property
    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self._loop is not None

    def on_loop_thread(self) -> bool:
        """Whether the caller runs on the loop thread (where blocking on the loop would deadlock)."""
        return self._thread is not None and threading.current_thread() is self._thread

    def start(self) -> None:
        """Start the loop thread (no-op if it already runs)."""
        with self._start_lock:
            if self.is_running:
                return
            self._ready.clear()
            self._thread = threading.Thread(target=self._main, name=self._name, daemon=True)
            self._thread.start()
            self._ready.wait()

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            # Cancel what is left (reconnect loops, watchdogs) so that the loop closes cleanly.
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._loop = None

    def close(self, timeout: float = 5.0) -> None:
        """Stop the loop and join its thread. Safe to call twice, and from any thread but the loop's own."""
        with self._start_lock:
            thread, loop = self._thread, self._loop
            if thread is None or loop is None:
                return
            if threading.current_thread() is thread:
                raise BrokerError(
                    "IBRuntime.close() called from its own loop thread; call it from another thread"
                )
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            if thread.is_alive():
                log.warning("IB runtime thread %s did not stop within %.1fs", self._name, timeout)
            self._thread = None

    # ------------------------------------------------------------------ marshalling
    def in_loop_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None or not self.is_running:
            raise BrokerError("the IB runtime is not running; call connect() first")
        return loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        """Run ``coro`` on the loop and wait up to ``timeout`` seconds for its result.

        On timeout the coroutine is cancelled and :class:`TimeoutError` is raised. Must not be called
        from the loop thread (that would deadlock); handlers there should schedule work instead.
        """
        return self.result(self.submit(coro), timeout)

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Start ``coro`` on the loop and return at once; :meth:`result` waits for it (not from the loop)."""
        if self.in_loop_thread():
            coro.close()
            raise BrokerError("IBRuntime.run() called from the loop thread; use spawn() there")
        return asyncio.run_coroutine_threadsafe(coro, self._require_loop())

    @staticmethod
    def result(future: concurrent.futures.Future[T], timeout: float | None = 30.0) -> T:
        """Wait up to ``timeout`` seconds for what :meth:`submit` started; on timeout it is cancelled and
        :class:`TimeoutError` is raised."""
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"IB operation did not finish within {timeout}s") from None

    def call(self, fn: Callable[..., T], *args: Any, timeout: float | None = 10.0) -> T:
        """Run the plain function ``fn(*args)`` on the loop thread and return its result.

        Called from the loop thread itself, it simply runs ``fn`` inline.
        """
        if self.in_loop_thread():
            return fn(*args)
        loop = self._require_loop()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def runner() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to the waiting thread, which re-raises it
                future.set_exception(exc)

        loop.call_soon_threadsafe(runner)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(
                f"IB call {getattr(fn, '__name__', fn)} did not finish within {timeout}s"
            ) from None

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Schedule ``fn(*args)`` on the loop without waiting (fire and forget; errors are logged)."""

        def runner() -> None:
            try:
                fn(*args)
            except Exception:
                log.exception("error in scheduled IB call %s", getattr(fn, "__name__", fn))

        loop = self._require_loop()
        if self.in_loop_thread():
            runner()
        else:
            loop.call_soon_threadsafe(runner)

    def run_eager(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` now, on the loop thread (only there), until it finishes or first has to wait.

        A coroutine that finishes without waiting (ib_async's cached reads, ``placeOrder`` of a contract
        already qualified) is done when this returns, its result in the future: the loop's own handlers
        use it where :meth:`run` would deadlock. One that has to wait goes on as a task on the loop, the
        future done when it ends. (Python 3.12's eager tasks do the same.)
        """
        if not self.in_loop_thread():
            coro.close()
            raise BrokerError("IBRuntime.run_eager() called off the loop thread; use run() there")
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        future.set_running_or_notify_cancel()
        try:
            waiting = coro.send(None)
        except StopIteration as done:
            future.set_result(done.value)
            return future
        except BaseException as exc:  # handed to whoever reads the future
            future.set_exception(exc)
            return future
        task = self._require_loop().create_task(_resume(coro, waiting))

        def finished(task: asyncio.Task[T]) -> None:
            if task.cancelled():
                future.cancel()
            elif task.exception() is not None:
                future.set_exception(task.exception())
            else:
                future.set_result(task.result())

        task.add_done_callback(finished)
        return future

    def drive_eager(self, coro: Coroutine[Any, Any, T], then: Callable[[Callable[[], T]], Any]) -> bool:
        """:meth:`run_eager` without a future, for the path from a bar to its orders: ``then(outcome)`` gets a
        function returning ``coro``'s result (or raising its exception) — at once when ``coro`` finishes
        without waiting (True is returned), else on the loop thread when its task ends (False)."""
        if not self.in_loop_thread():
            coro.close()
            raise BrokerError("IBRuntime.drive_eager() called off the loop thread; use run() there")
        try:
            waiting = coro.send(None)
        except StopIteration as done:
            value: T = done.value
            then(lambda: value)
            return True
        except BaseException as exc:  # handed to ``then``, which re-raises it where it reads the outcome
            failure = exc

            def raise_it() -> T:
                raise failure

            then(raise_it)
            return True
        task = self._require_loop().create_task(_resume(coro, waiting))
        task.add_done_callback(lambda ended: then(ended.result))
        return False

    def defer(self, fn: Callable[..., Any], *args: Any, delay: float = 0.0) -> None:
        """Schedule ``fn(*args)`` on the loop, to run after what the loop is doing now — also when called
        on the loop thread (where :meth:`call_soon` runs it at once) — or ``delay`` seconds from now; errors
        are logged."""

        def runner() -> None:
            try:
                fn(*args)
            except Exception:
                log.exception("error in deferred IB call %s", getattr(fn, "__name__", fn))

        loop = self._loop
        if loop is not None and self.in_loop_thread():  # the loop runs this very call: no check, no wake-up
            if delay > 0:
                loop.call_later(delay, runner)
            else:
                loop.call_soon(runner)
            return
        loop = self._require_loop()
        if delay > 0:
            loop.call_soon_threadsafe(loop.call_later, delay, runner)
        else:
            loop.call_soon_threadsafe(runner)

    def start_task(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        """:meth:`spawn` without a handle, for the loop thread's own handlers: there the task is created at
        once, without waking the loop through its self-pipe (a socket write that gives up the GIL, right
        after a bar's orders); elsewhere as :meth:`spawn`. Failures are logged, never lost."""
        loop = self._loop
        if loop is None or not self.in_loop_thread():
            self.spawn(coro, name)
            return

        def report(task: asyncio.Task[Any]) -> None:
            self._tasks.discard(task)
            if not task.cancelled() and task.exception() is not None:
                exc = task.exception()
                log.error("background task %s failed: %r", name, exc, exc_info=exc)

        task = loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(report)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> concurrent.futures.Future[Any]:
        """Start ``coro`` as a background task on the loop; failures are logged, never lost."""
        loop = self._require_loop()
        future = asyncio.run_coroutine_threadsafe(coro, loop)

        def report(done: concurrent.futures.Future[Any]) -> None:
            if done.cancelled():
                return
            exc = done.exception()
            if exc is not None:
                log.error("background task %s failed: %r", name, exc, exc_info=exc)

        future.add_done_callback(report)
        return future


async def _resume(coro: Coroutine[Any, Any, T], waiting: Any) -> T:
    """Drive ``coro`` on from where :meth:`IBRuntime.run_eager` left it (it yielded ``waiting``: an asyncio
    future, or None for a bare ``sleep(0)``), as a task would have."""
    while True:
        try:
            if waiting is None:
                await asyncio.sleep(0)
            else:
                await asyncio.wait([waiting])  # done (or failed): the coroutine reads its outcome itself
        except asyncio.CancelledError as cancel:
            try:
                waiting = coro.throw(cancel)
            except StopIteration as done:
                return done.value
            continue
        try:
            waiting = coro.send(None)
        except StopIteration as done:
            return done.value
