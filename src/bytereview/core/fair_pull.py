"""Fair pulling: a worker shares its free slots out across a fair queue's lanes (#18).

A fair queue (`QueueSpec.fair`) has one lane per tenant, each with its own durable
consumer. JetStream hands out a consumer's messages in stream order, so with one consumer
a tenant's 10,000-task job would hold every worker until it is done and another tenant's
5 tasks would wait behind it. Here each free slot goes to the lane this worker serves
least right now (fewest messages held, ties in rotating order), so a lane with new work
gets the next slots that free up on every replica, and busy lanes share the pool evenly.

Pulls are `no_wait` requests: JetStream answers at once with what the lane has (up to the
batch) and a 404 status when it has less. No pull request lingers on the server, so no
message is delivered to a request already given up (it would sit unworked until AckWait
and use up an attempt). The lanes with work come from the stream's per-subject counts,
read every LOOK_SECONDS, and at once when new work is published: the worker listens to the
queue's subjects (core NATS sees every JetStream publish) for as long as it pulls. An idle
worker wakes on it; a busy one learns of a lane it did not know to hold work before its
next slot frees, so that slot goes to the new lane. Reading the counts only every
LOOK_SECONDS gave the slots freeing in between (a quarter of a second's worth on average,
on every replica) to the lanes already known: a small job beside a big one took 1.6-1.8x
its time alone, the bar being 2x.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext

from bytereview.core.streams import QueueSpec, declare_lane

JS_API = "$JS.API"
# How long a pull waits for JetStream's answer (it answers at once unless NATS is in trouble).
PULL_TIMEOUT_SECONDS = 5.0
# How often the lanes with work are read from the stream while the worker pulls.
LOOK_SECONDS = 0.5


def share(
    free: int,
    lanes: Sequence[str],
    held: Mapping[str, int],
    room: Mapping[str, int],
    *,
    first: int = 0,
) -> dict[str, int]:
    """How many of `free` slots each lane gets: one slot at a time to the lane holding the
    fewest (held here + granted so far), never more than a lane's `room`; ties go in
    rotating order from `first`, so equal lanes take turns across rounds."""
    if not lanes or free <= 0:
        return {}
    start = first % len(lanes)
    order = [*lanes[start:], *lanes[:start]]
    load = {lane: held.get(lane, 0) for lane in order}
    grants = dict.fromkeys(order, 0)
    for _ in range(free):
        open_lanes = [lane for lane in order if grants[lane] < room.get(lane, 0)]
        if not open_lanes:
            break
        lane = min(open_lanes, key=load.__getitem__)  # min keeps the first of equals
        load[lane] += 1
        grants[lane] += 1
    return {lane: n for lane, n in grants.items() if n}


class FairPuller:
    """Pulls from a fair queue's lanes, sharing the free slots out between them."""

    def __init__(
        self,
        *,
        nc: NatsClient,
        js: JetStreamContext,
        spec: QueueSpec,
        look_seconds: float = LOOK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._nc = nc
        self._js = js
        self._spec = spec
        self._look_seconds = look_seconds
        self._clock = clock
        self._lanes: dict[str, int] = {}  # lane subject -> messages it held at the last look
        self._declared: set[str] = set()
        self._dry: set[str] = set()  # lanes a pull found empty since the last look
        self._looked = -math.inf
        self._turn = 0
        self._woke = asyncio.Event()  # set on every publish to the queue's subjects
        self._watching: list[Subscription] = []

    async def fetch(self, batch: int, held: Iterable[str], *, wait: float) -> list[Msg]:
        """Up to `batch` messages, shared out across the lanes; `held` are the subjects of
        the messages this worker is working on. Waits up to `wait` seconds for work."""
        deadline = self._clock() + wait
        held_by_lane = Counter(held)
        # Listening starts before the first round and lasts until close(): a publish that
        # lands between a round finding nothing and the wait starting still wakes us, and
        # one for a new lane while every slot is busy is seen before the next fetch.
        await self._watch()
        while True:
            self._woke.clear()
            msgs = await self.pull_round(batch, held_by_lane)
            remaining = deadline - self._clock()
            if msgs or wait <= 0 or remaining <= 0:
                return msgs
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._woke.wait()

    async def pull_round(self, batch: int, held: Mapping[str, int]) -> list[Msg]:
        """One pass: look at the lanes if due, then pull each lane's share (no waiting).

        A lane that gives fewer than its share (its last count was stale: other workers took
        them) is dry until the next look, and its slots are shared out again among the
        others at once: left to the next round, they sat idle until work was published or
        the fetch's wait ran out, with other lanes full of work.
        """
        out: list[Msg] = []
        looked = False
        while len(out) < batch:
            stale = self._clock() - self._looked >= self._look_seconds
            if not looked and (stale or not self._lanes.keys() - self._dry):
                await self._look()
                looked = True
            lanes = [lane for lane in self._lanes if lane not in self._dry]
            holding = Counter(held) + Counter(m.subject for m in out)
            grants = share(batch - len(out), lanes, holding, self._lanes, first=self._turn)
            self._turn += 1
            if not grants:
                break
            short = False
            for lane, n in grants.items():
                got = await self._pull(lane, n)
                if len(got) < n:
                    self._dry.add(lane)
                    short = True
                out.extend(got)
            if not short:
                break
        return out

    async def _look(self) -> None:
        """Read which lanes hold messages (waiting or in flight) and declare new ones."""
        info = await self._js.stream_info(self._spec.stream, subjects_filter=">")
        subjects = info.state.subjects or {}
        self._lanes = {s: int(n) for s, n in subjects.items() if n and self._spec.holds(s)}
        self._dry.clear()
        self._looked = self._clock()
        for lane in self._lanes.keys() - self._declared:
            await declare_lane(self._js, self._spec, lane)
            self._declared.add(lane)

    async def _pull(self, lane: str, batch: int) -> list[Msg]:
        durable = self._spec.lane_durable(lane)
        inbox = self._nc.new_inbox()
        sub = await self._nc.subscribe(inbox)
        out: list[Msg] = []
        try:
            request = json.dumps({"batch": batch, "no_wait": True}).encode()
            api = f"{JS_API}.CONSUMER.MSG.NEXT.{self._spec.stream}.{durable}"
            await self._nc.publish(api, request, reply=inbox)
            while len(out) < batch:
                try:
                    msg = await sub.next_msg(timeout=PULL_TIMEOUT_SECONDS)
                except (TimeoutError, nats.errors.TimeoutError):
                    if out:
                        break  # keep what came: those messages are ours now
                    self._declared.discard(lane)  # maybe gone: declare it again
                    raise
                status = msg.headers.get("Status") if msg.headers else None
                if status is None:
                    out.append(msg)
                    continue
                # 404/408: nothing (more) to take; 409: e.g. MaxAckPending reached;
                # 503: no consumer answered (deleted for inactivity): declare it again.
                if status == "503":
                    self._declared.discard(lane)
                break
            return out
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _watch(self) -> None:
        """Listen to the queue's subjects (once; close() ends it)."""
        if self._watching:
            return
        subs = [await self._nc.subscribe(s, cb=self._published) for s in self._spec.subjects]
        self._watching = subs
        await self._nc.flush()  # the server has the subscriptions before we pull

    async def _published(self, msg: Msg) -> None:
        # A lane not known to hold work (or found empty since the last look): look again
        # before the next pull, so the next free slot can go to it.
        if msg.subject not in self._lanes or msg.subject in self._dry:
            self._looked = -math.inf
        self._woke.set()

    async def close(self) -> None:
        """Stop listening to the queue's subjects."""
        watching, self._watching = self._watching, []
        for sub in watching:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
