# Event callbacks on engine threads: GIL handling, no deadlock on stop/unsubscribe, unraisable errors.
import gc
import sys
import threading
import time
import weakref

import pytest

from hlsrelay import Engine, InvalidArgument
from conftest import wait_for


def segments(events):
    return [e for e in events if e["type"] == "segment"]


@pytest.mark.deadline(60)
def test_events_arrive_while_main_thread_is_busy(live_engine):
    events = []  # (monotonic time, thread ident, event)
    live_engine.subscribe(lambda ev: events.append((time.monotonic(), threading.get_ident(), ev)))
    live_engine.start("test")
    wait_for(lambda: segments([e for _, _, e in events]), 20, what="a first segment")

    # Pure Python until two segment events arrived (at most 30 s): never sleeps, never calls into the
    # engine. Engine threads must still get the GIL (the interpreter hands it over every switch
    # interval) and deliver their events while the main thread spins.
    begin = time.monotonic()
    end = begin + 30.0
    spins = 0
    during = []
    while len(during) < 2 and time.monotonic() < end:
        spins += 1
        if spins % 10000 == 0:  # a look at the list now and then (appends happen on engine threads)
            during = [(t, tid, e) for t, tid, e in list(events) if t >= begin and e["type"] == "segment"]
    assert len(during) >= 2, f"only {len(during)} segment events during 30 s of busy main thread"
    assert all(tid != threading.get_ident() for _, tid, _ in during)
    assert spins > 0
    seqs = [e["sequence"] for _, _, e in events if e["type"] == "segment"]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all(e["duration"] == pytest.approx(1.0, abs=0.2) for e in segments([e for _, _, e in events]))
    state = [e for _, _, e in events if e["type"] == "state"]
    assert [e["state"] for e in state[:2]] == ["starting", "running"]


@pytest.mark.parametrize("hold", ["sleep", "busy"])
@pytest.mark.deadline(30)
def test_stop_while_callbacks_in_flight_does_not_deadlock(live_engine, hold):
    in_callback = threading.Event()
    calls = []

    def slow(ev):
        calls.append(ev)
        in_callback.set()
        if hold == "sleep":
            time.sleep(0.2)  # releases the GIL
        else:
            end = time.monotonic() + 0.2  # keeps the GIL (modulo the switch interval)
            while time.monotonic() < end:
                pass

    live_engine.subscribe(slow)
    live_engine.start("test")
    wait_for(lambda: segments(calls), 20, what="a segment event")
    in_callback.clear()
    assert in_callback.wait(10)  # a callback is (or just was) running on a worker thread

    # stop() waits for the worker, whose callback waits for the GIL: stop must release it.
    t0 = time.monotonic()
    live_engine.stop("test")
    assert time.monotonic() - t0 < 10
    assert not live_engine.running("test")
    assert calls[-1]["type"] == "state" and calls[-1]["state"] == "stopped"


@pytest.mark.deadline(60)
def test_stop_from_another_thread_while_main_is_in_a_callback_path(live_engine):
    # Several Python threads hammer the engine while callbacks run; everything must finish.
    calls = []
    live_engine.subscribe(lambda ev: (calls.append(ev), time.sleep(0.05)))
    live_engine.start("test")
    wait_for(lambda: segments(calls), 20, what="a segment event")
    errors = []

    def poll():
        try:
            for _ in range(50):
                live_engine.status("test")
                live_engine.read("test", "index.m3u8")
                live_engine.statuses()
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=poll) for _ in range(3)]
    for t in threads:
        t.start()
    stopper = threading.Thread(target=live_engine.stop, args=("test",))
    stopper.start()
    stopper.join(15)
    assert not stopper.is_alive(), "stop() hung"
    for t in threads:
        t.join(15)
        assert not t.is_alive()
    assert not errors


@pytest.mark.deadline(60)
def test_unsubscribe_waits_for_a_running_callback(live_engine):
    main = threading.get_ident()
    calls = []
    entered = threading.Event()

    def slow(ev):
        on_worker = threading.get_ident() != main  # "starting" is delivered on the caller of start()
        if on_worker:
            entered.set()
        time.sleep(1.0)
        calls.append((on_worker, ev))

    witness = []  # a second subscriber: proof that events go on being delivered
    sid = live_engine.subscribe(slow)
    live_engine.subscribe(witness.append)
    live_engine.start("test")
    assert entered.wait(20)  # a worker thread is now inside slow(), sleeping
    t0 = time.monotonic()
    live_engine.unsubscribe(sid)
    assert time.monotonic() - t0 > 0.05  # it waited for the call in flight ...
    assert any(on_worker for on_worker, _ in calls)  # ... which completed before it returned
    count = len(calls)
    seen = len(segments(witness))
    wait_for(lambda: len(segments(witness)) >= seen + 2, 30, what="two more segment events")
    assert len(calls) == count  # none of them reached the unsubscribed callback
    live_engine.unsubscribe(sid)  # unknown ids are ignored


@pytest.mark.deadline(60)
def test_exception_in_callback_is_unraisable_and_engine_keeps_running(live_engine, monkeypatch):
    reports = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: reports.append((u.exc_type, str(u.exc_value), u.object)))

    def broken(ev):
        if ev["type"] == "segment":
            raise ValueError(f"boom {ev['sequence']}")

    good = []
    live_engine.subscribe(broken)
    live_engine.subscribe(good.append)
    live_engine.start("test")
    wait_for(lambda: len(segments(good)) >= 3, 20, what="3 segment events")
    assert reports, "the callback's exception was not reported to sys.unraisablehook"
    exc_type, message, obj = reports[0]
    assert exc_type is ValueError and message.startswith("boom ") and obj is broken
    assert live_engine.running("test")
    assert live_engine.status("test")["process_status"] == "running"
    assert len(reports) >= 2  # every failing call is reported; the subscription stays


@pytest.mark.deadline(60)
def test_blocking_calls_from_a_callback_raise(live_engine):
    outcomes = []

    def naughty(ev):
        if ev["type"] == "segment" and not outcomes:
            for call in (lambda: live_engine.stop("test"), lambda: live_engine.remove_channel("test"),
                         lambda: live_engine.update_channel("test", loop=True), live_engine.close,
                         lambda: live_engine.start("test"), lambda: live_engine.api("start-stream", "test"),
                         live_engine.stop_all):
                try:
                    call()
                    outcomes.append("returned")
                except InvalidArgument as e:
                    outcomes.append(str(e))
            # Unsubscribing from inside the callback is allowed and does not wait for itself.
            live_engine.unsubscribe(sid)

    sid = live_engine.subscribe(naughty)
    live_engine.start("test")
    wait_for(lambda: len(outcomes) == 7, 20, what="the callback")
    assert all("event callback" in o for o in outcomes), outcomes
    assert live_engine.running("test") and not live_engine.closed


@pytest.mark.deadline(60)
def test_callback_references_are_released(live_engine):
    class Callback:
        def __init__(self):
            self.events = []

        def __call__(self, ev):
            self.events.append(ev)

    cb = Callback()
    sid = live_engine.subscribe(cb)
    live_engine.start("test")
    wait_for(lambda: segments(cb.events), 20, what="a segment event")
    ref = weakref.ref(cb)
    del cb
    gc.collect()
    assert ref() is not None  # the engine holds it while subscribed
    live_engine.unsubscribe(sid)
    gc.collect()
    assert ref() is None

    other = Callback()
    live_engine.subscribe(other)
    ref = weakref.ref(other)
    del other
    live_engine.close()  # dropping the engine's subscribers releases the callable too
    gc.collect()
    assert ref() is None


@pytest.mark.deadline(90)
def test_close_from_another_thread_while_calls_are_in_flight(media):
    e = Engine(segment_duration=1.0, log_level="error")
    e.add_channel("T", url=media, loop=True)
    e.subscribe(lambda ev: time.sleep(0.05))
    e.start("t")
    wait_for(lambda: e.status("t")["segment_count"] >= 1, 20, what="a segment")
    stop = threading.Event()
    reads = []
    unexpected = []

    def reader():
        while not stop.is_set():
            try:
                e.read("t", "index.m3u8")
                e.status("t")
                reads.append(1)
            except Exception as error:
                # Once close() won, calls raise "the engine is closed"; anything else is a failure.
                if not (e.closed and "the engine is closed" in str(error)):
                    unexpected.append(repr(error))
                return

    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in readers:
        t.start()
    wait_for(lambda: len(reads) >= 20, 20, what="the readers' first calls")  # calls are in flight
    closer = threading.Thread(target=e.close)
    closer.start()
    closer.join(20)
    assert not closer.is_alive(), "close() hung"
    stop.set()
    for t in readers:
        t.join(10)
        assert not t.is_alive()
    assert not unexpected, unexpected
    assert e.closed
