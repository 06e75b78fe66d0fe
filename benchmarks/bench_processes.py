"""Figure 6: many processes, one PostgreSQL. Webhooks and checkouts per second with
1, 2 and 4 worker processes (``multiprocessing``, spawn) sharing one database
through ``PostgresStore``; the ratio 4 processes ÷ 1 process says how much of
the work the store lets run side by side.

* **webhooks**: the orders are built once (``FakeStripeGateway``, unpaid, their
  intents succeeded) in a template schema and copied into a fresh schema for
  every measurement; their ``payment_intent.succeeded`` events are signed as in
  ``bench_webhooks`` and verified by a ``StripeGateway`` (no request). Each
  worker handles its share: every delivery is a first one that pays its order.
* **checkouts**: each worker runs cart → ``create_payment_intent`` →
  ``checkout`` → ``confirm_payment`` → ``confirm_order`` on its own
  ``FakeStripeGateway`` (no network; one per process, so the figure is the
  store side's throughput), all on one fresh schema.
* **contention**: 4 processes deliver the SAME events at once; each event is
  applied exactly once and the other three deliveries are duplicates (asserted).

Every worker opens its store and prepares its work, then waits at a barrier; a
figure is the wall time from the barrier to the last worker done. Each figure is
measured ``rounds`` times (1, 2, 4 processes interleaved in every round); the
table shows the median and the spread (min–max). Needs
``CARTPAY_TEST_POSTGRES_DSN``; without it the section is one "skipped" row.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing as mp
import os
import queue
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # (spawned children import this module by name)
    sys.path.insert(0, str(HERE))

from _harness import Row, Target, median  # noqa: E402

SECTION = "7. processes"
CARD = "pm_card_visa"
SECRET = "whsec_cartpay_bench"
PROCESSES = (1, 2, 4)
TABLES = ("carts", "orders", "intents")


# ------------------------------------------------------------------ the workers
@dataclass(frozen=True)
class Task:
    """One worker's part of one measurement (picklable)."""

    kind: str  # "webhooks" or "checkouts"
    dsn: str
    schema: str
    worker: int
    deliveries: list[tuple[bytes, str]] = field(default_factory=list)
    checkouts: int = 0
    profile: str | None = None  # write cProfile stats of the timed part there


def _open(task: Task) -> Any:
    from cartpay.stores.postgres import PostgresStore

    return PostgresStore(task.dsn, schema=task.schema, min_size=1, max_size=2)


def _webhooks(task: Task) -> tuple[Any, Any]:
    from cartpay import CartPaymentIntent

    store = _open(task)
    payments = CartPaymentIntent(
        return_url="https://shop.test/return", gateway=webhook_gateway(), store=store
    )
    deliveries = task.deliveries

    def work() -> Counter[str]:
        return Counter(payments.handle_webhook(p, h).action for p, h in deliveries)

    return store, work


def _checkouts(task: Task) -> tuple[Any, Any]:
    from cartpay import CartPaymentIntent
    from cartpay.testing import FakeStripeGateway

    store = _open(task)
    gateway = FakeStripeGateway(redirects=False)
    # One fake per process: its intent ids must not collide in the shared tables.
    gateway._ids = itertools.count(1 + task.worker * 10_000_000)
    payments = CartPaymentIntent(
        return_url="https://shop.test/return", gateway=gateway, store=store
    )
    count = task.checkouts

    def work() -> Counter[str]:
        done: Counter[str] = Counter()
        for _ in range(count):
            cart = payments.create_cart("usd")
            payments.add_item(cart.id, sku="tee", name="T-shirt", unit_amount=2500, quantity=2)
            payments.add_item(cart.id, sku="mug", name="Mug", unit_amount=1200)
            payments.create_payment_intent(cart.id)
            order = payments.checkout(cart.id)
            payments.confirm_payment(order.id, payment_method=CARD)
            done[payments.confirm_order(order.id).payment] += 1
        return done

    return store, work


def _serve(inbox: Any, outbox: Any, go: Any) -> None:
    """A worker process: for each task, prepare, report ready, wait for ``go``, work,
    report ``(done time, what happened)``. ``None`` ends it."""
    # Its own session, as a separately started service has: with Linux's
    # autogroup scheduling, the processes of one session share one session's
    # CPU share, so on a machine busy with other work 4 workers of one session
    # get no more CPU than 1 (PostgreSQL's backends have their own sessions).
    if hasattr(os, "setsid"):
        os.setsid()
    while (task := inbox.get()) is not None:
        try:
            store, work = (_webhooks if task.kind == "webhooks" else _checkouts)(task)
            profiler = None
            if task.profile:
                import cProfile

                profiler = cProfile.Profile()
            outbox.put(("ready", task.worker, None))
            go.wait()
            if profiler is not None:
                profiler.enable()
            counts = work()
            done = time.monotonic()
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(task.profile)
            store.close()
            outbox.put(("done", task.worker, (done, dict(counts))))
        except BaseException as exc:  # (reported to the parent, which raises)
            outbox.put(("failed", task.worker, f"{type(exc).__name__}: {exc}"))


class Workers:
    """Four spawned processes, reused by every measurement (spawning is not timed)."""

    def __init__(self, count: int = max(PROCESSES)) -> None:
        ctx = mp.get_context("spawn")
        self.go = ctx.Event()
        self.outbox = ctx.Queue()
        self.inboxes = [ctx.Queue() for _ in range(count)]
        self.procs = [
            ctx.Process(target=_serve, args=(inbox, self.outbox, self.go), daemon=True)
            for inbox in self.inboxes
        ]
        for proc in self.procs:
            proc.start()

    def _collect(self, state: str, count: int) -> dict[int, Any]:
        got: dict[int, Any] = {}
        while len(got) < count:
            try:
                kind, worker, value = self.outbox.get(timeout=1)
            except queue.Empty:
                dead = [i for i, p in enumerate(self.procs) if not p.is_alive()]
                if dead:
                    raise RuntimeError(f"worker processes {dead} died") from None
                continue
            if kind == "failed":
                raise RuntimeError(f"worker {worker}: {value}")
            assert kind == state, (kind, state)
            got[worker] = value
        return got

    def run(self, tasks: list[Task]) -> tuple[float, list[dict[str, int]]]:
        """Seconds from the barrier (all ready) to the last done, and each one's counts."""
        self.go.clear()
        for task in tasks:
            self.inboxes[task.worker].put(task)
        self._collect("ready", len(tasks))
        start = time.monotonic()
        self.go.set()
        done = self._collect("done", len(tasks))
        self.go.clear()
        return max(t for t, _ in done.values()) - start, [c for _, c in done.values()]

    def close(self) -> None:
        for inbox in self.inboxes:
            inbox.put(None)
        for proc in self.procs:
            proc.join(timeout=30)


# ------------------------------------------------------------------- the setup
def _fresh_schema(dsn: str, template: str | None = None) -> str:
    """A new schema (migrated by PostgresStore), with the template's records copied."""
    import psycopg
    from psycopg import sql

    from cartpay.stores.postgres import PostgresStore

    schema = f"bench_procs_{uuid.uuid4().hex[:12]}"
    PostgresStore(dsn, schema=schema, max_size=1).close()
    if template is not None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for table in TABLES:
                conn.execute(
                    sql.SQL("INSERT INTO {} SELECT * FROM {}").format(
                        sql.Identifier(schema, table), sql.Identifier(template, table)
                    )
                )
                conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, table)))
    return schema


def _drop(dsn: str, *schemas: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _template(dsn: str, orders: int) -> tuple[str, list[dict[str, Any]]]:
    """A schema of ``orders`` unpaid orders whose intents succeeded at a fake Stripe,
    and their ``payment_intent.succeeded`` events."""
    from cartpay import CartPaymentIntent
    from cartpay.stores.postgres import PostgresStore
    from cartpay.testing import FakeStripeGateway

    schema = _fresh_schema(dsn)
    gateway = FakeStripeGateway(webhook_secret=SECRET, redirects=False)
    with PostgresStore(dsn, schema=schema, max_size=1) as store:
        payments = CartPaymentIntent(
            return_url="https://shop.test/return", gateway=gateway, store=store
        )
        for i in range(orders):
            cart = payments.create_cart("usd")
            payments.add_item(cart.id, sku="tee", name="T-shirt", unit_amount=2500, quantity=2)
            payments.add_item(cart.id, sku="mug", name="Mug", unit_amount=1200)
            handle = payments.create_payment_intent(cart.id)
            payments.checkout(cart.id)
            gateway.confirm_intent(handle.id, payment_method=CARD, idempotency_key=f"b:{i}")
    events = [json.loads(payload) for payload, _ in gateway.events()]
    return schema, [e for e in events if e["type"] == "payment_intent.succeeded"]


def sign(events: list[dict[str, Any]], suffix: str) -> list[tuple[bytes, str]]:
    """The events under new ids (``<id>_<suffix>``), signed now (as Stripe does)."""
    import stripe

    out = []
    for event in events:
        payload = json.dumps({**event, "id": f"{event['id']}_{suffix}"}, separators=(",", ":"))
        header = stripe.WebhookSignature.generate_signature_header(payload, SECRET)
        out.append((payload.encode(), header))
    return out


def webhook_gateway() -> Any:
    """A StripeGateway that only verifies (these deliveries make no request)."""
    import stripe

    from cartpay.gateways.stripe import StripeGateway

    return StripeGateway(stripe.StripeClient("sk_test_cartpay_bench"), webhook_secret=SECRET)


def _split(items: list[Any], parts: int) -> list[list[Any]]:
    return [items[i::parts] for i in range(parts)]


@dataclass
class Figures:
    """Per process count: the rate of every round."""

    rates: dict[int, list[float]] = field(default_factory=dict)

    def add(self, processes: int, rate: float) -> None:
        self.rates.setdefault(processes, []).append(rate)

    def ratio(self) -> float:
        """The median of the per-round ratios 4 ÷ 1 (both measured in the same round)."""
        return median([f / o for f, o in zip(self.rates[4], self.rates[1], strict=True)])


def _spread(values: list[float]) -> str:
    return f"median {median(values):,.0f}/s (min {min(values):,.0f}, max {max(values):,.0f})"


def measure(
    dsn: str, *, orders: int, checkouts: int, rounds: int, profile_dir: str | None = None
) -> tuple[Figures, Figures, list[float]]:
    """The rounds of all three figures; ``profile_dir``: cProfile each worker there."""
    template, events = _template(dsn, orders)
    workers = Workers()
    hooks, carts, contention = Figures(), Figures(), []
    try:
        for rnd in range(rounds):
            for n in PROCESSES:
                schema = _fresh_schema(dsn, template)
                deliveries = sign(events, f"r{rnd}n{n}")

                def prof(kind: str, worker: int, n: int = n, rnd: int = rnd) -> str | None:
                    if profile_dir is None:
                        return None
                    return os.path.join(profile_dir, f"{kind}-{n}p-r{rnd}-w{worker}.prof")

                tasks = [
                    Task("webhooks", dsn, schema, w, share, profile=prof("webhooks", w))
                    for w, share in enumerate(_split(deliveries, n))
                ]
                seconds, counts = workers.run(tasks)
                applied = sum(c.get("applied", 0) for c in counts)
                assert applied == len(deliveries), f"{applied} of {len(deliveries)} applied"
                hooks.add(n, len(deliveries) / seconds)
                _drop(dsn, schema)

                schema = _fresh_schema(dsn)
                tasks = [
                    Task(
                        "checkouts",
                        dsn,
                        schema,
                        w,
                        checkouts=len(share),
                        profile=prof("checkouts", w),
                    )
                    for w, share in enumerate(_split(list(range(checkouts)), n))
                ]
                seconds, counts = workers.run(tasks)
                paid = sum(c.get("paid", 0) for c in counts)
                assert paid == checkouts, f"{paid} of {checkouts} checkouts paid"
                carts.add(n, checkouts / seconds)
                _drop(dsn, schema)

            # The contention case: 4 processes, the same deliveries, in the same order.
            schema = _fresh_schema(dsn, template)
            deliveries = sign(events, f"r{rnd}same")
            tasks = [Task("webhooks", dsn, schema, w, deliveries) for w in range(4)]
            seconds, counts = workers.run(tasks)
            total = Counter[str]()
            for c in counts:
                total.update(c)
            assert total["applied"] == len(deliveries), f"applied {total}"
            assert total["duplicate"] == 3 * len(deliveries), f"duplicates {total}"
            contention.append(len(deliveries) / seconds)
            _drop(dsn, schema)
    finally:
        workers.close()
        _drop(dsn, template)
    return hooks, carts, contention


def run(*, quick: bool) -> list[Row]:
    dsn = os.environ.get("CARTPAY_TEST_POSTGRES_DSN")
    if not dsn:
        return [Row(SECTION, "skipped (CARTPAY_TEST_POSTGRES_DSN unset)", 0, "")]
    orders, checkouts, rounds = (160, 40, 3) if quick else (1000, 200, 5)
    started = time.perf_counter()
    hooks, carts, contention = measure(dsn, orders=orders, checkouts=checkouts, rounds=rounds)
    elapsed = time.perf_counter() - started
    how = f"{rounds} rounds, spawned processes, one PostgreSQL ({elapsed:.0f} s for the section)"
    rows = [
        Row(
            SECTION,
            f"webhooks/s, {n} process{'es' if n > 1 else ''} (first deliveries that pay)",
            round(median(hooks.rates[n])),
            "/s",
            detail=f"{_spread(hooks.rates[n])}; {orders} events split between them",
            extra={"rates": hooks.rates[n], "processes": n},
        )
        for n in PROCESSES
    ]
    rows.append(
        Row(
            SECTION,
            "webhook throughput, 4 processes ÷ 1 process",
            round(hooks.ratio(), 3),
            "×",
            Target(">=", 1.5),
            detail=f"median of per-round ratios; {how}",
            baseline="the same work in 1 process on the same PostgreSQL",
        )
    )
    rows += [
        Row(
            SECTION,
            f"checkouts/s, {n} process{'es' if n > 1 else ''} (cart → confirm_order, fake Stripe)",
            round(median(carts.rates[n]), 1),
            "/s",
            detail=f"{_spread(carts.rates[n])}; {checkouts} checkouts split between them",
            extra={"rates": carts.rates[n], "processes": n},
        )
        for n in PROCESSES
    ]
    rows.append(
        Row(
            SECTION,
            "checkout throughput, 4 processes ÷ 1 process",
            round(carts.ratio(), 3),
            "×",
            detail=f"median of per-round ratios; {how}",
            baseline="the same work in 1 process on the same PostgreSQL",
        )
    )
    rows.append(
        Row(
            SECTION,
            "contention: 4 processes deliver the same events, events/s",
            round(median(contention)),
            "/s",
            detail=(
                f"{_spread(contention)}; {orders} events each delivered 4 times at once: "
                "every one applied exactly once, 3 duplicates (asserted)"
            ),
            extra={"rates": contention},
        )
    )
    return rows


if __name__ == "__main__":  # python benchmarks/bench_processes.py [--quick] [--profile DIR]
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--profile", help="dump each worker's cProfile stats into this directory")
    args = parser.parse_args()
    if args.profile:
        dsn = os.environ["CARTPAY_TEST_POSTGRES_DSN"]
        os.makedirs(args.profile, exist_ok=True)
        result = measure(dsn, orders=400, checkouts=120, rounds=1, profile_dir=args.profile)
        print(json.dumps([f.rates for f in result[:2]] + [result[2]], indent=1))
    else:
        from run import print_table

        print_table(run(quick=args.quick))
