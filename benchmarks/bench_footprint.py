"""Figure 5: the import time of ``cartpay`` (which must not import stripe) and the
peak memory while processing many webhooks. Each is measured in a fresh
interpreter (``python -X importtime``; this file run as a child process).

Memory: 1,000 paid orders (SQLite), then N deliveries of their
``payment_intent.succeeded`` events, each under a new event id, signed as it is
made (nothing is held in a list). ``tracemalloc`` gives the peak of Python
allocations while processing the first 10 % and then all N: if nothing
accumulates per event, the two peaks are about equal.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import tracemalloc
from collections.abc import Iterator
from typing import Any

from _harness import Row, Target, median

SECTION = "5. footprint"
HERE = os.path.dirname(os.path.abspath(__file__))


def import_ms(module: str, rounds: int) -> tuple[float, bool]:
    """Median cumulative import time of ``module`` (ms), and whether stripe was imported."""
    times = []
    stripe_loaded = False
    code = f"import sys, {module}; print('stripe' in sys.modules)"
    for _ in range(rounds):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code],
            capture_output=True,
            text=True,
            check=True,
        )
        stripe_loaded = stripe_loaded or out.stdout.strip() == "True"
        for line in out.stderr.splitlines():
            match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\s*)(\S+)$", line)
            if match and match.group(3) == module and not match.group(2):
                times.append(int(match.group(1)) / 1000)
    return median(times), stripe_loaded


def _deliveries(events: list[dict[str, Any]], count: int) -> Iterator[tuple[bytes, str]]:
    import stripe
    from bench_webhooks import SECRET

    for i in range(count):
        event = events[i % len(events)]
        payload = json.dumps({**event, "id": f"{event['id']}_m{i}"}, separators=(",", ":"))
        yield payload.encode(), stripe.WebhookSignature.generate_signature_header(payload, SECRET)


def child_memory(count: int, orders: int = 1000) -> dict[str, float]:
    """(In the child.) Peak memory while processing ``count`` webhooks for
    ``orders`` paid orders."""
    from bench_webhooks import SECRET, build_orders, webhook_gateway

    from cartpay import CartPaymentIntent
    from cartpay.stores.sqlite import SQLiteStore
    from cartpay.testing import FakeStripeGateway

    with tempfile.TemporaryDirectory(prefix="cartpay-bench-") as tmp:
        store = SQLiteStore(os.path.join(tmp, "memory.sqlite3"))
        events = build_orders(FakeStripeGateway(webhook_secret=SECRET), store, orders, pay=True)
        payments = CartPaymentIntent(
            return_url="https://shop.test/return", gateway=webhook_gateway(), store=store
        )
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        first = count // 10
        deliveries = _deliveries(events, count)
        for n, (payload, header) in enumerate(deliveries, 1):
            payments.handle_webhook(payload, header)
            if n == first:
                peak_first = tracemalloc.get_traced_memory()[1]
        current, peak_all = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        store.close()
    return {
        "events": count,
        "peak_first_mb": peak_first / 2**20,
        "peak_all_mb": peak_all / 2**20,
        "retained_mb": current / 2**20,
        "maxrss_before_mb": rss_before / 1024,
        "maxrss_after_mb": rss_after / 1024,
    }


def run(*, quick: bool) -> list[Row]:
    rounds = 3 if quick else 9
    cartpay_ms, stripe_loaded = import_ms("cartpay", rounds)
    stripe_ms, _ = import_ms("stripe", rounds)
    count, orders = (5_000, 200) if quick else (100_000, 1000)
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "memory", str(count), str(orders)],
        capture_output=True,
        text=True,
        check=True,
        cwd=HERE,
    )
    memory = json.loads(out.stdout.strip().splitlines()[-1])
    return [
        Row(
            SECTION,
            "import cartpay: stripe imported",
            int(stripe_loaded),
            "(1 = yes)",
            Target("==", 0),
        ),
        Row(
            SECTION,
            "import cartpay: import time",
            round(cartpay_ms, 1),
            "ms",
            detail=(
                f"median of {rounds} fresh interpreters (python -X importtime); "
                f"import stripe alone: {stripe_ms:.0f} ms"
            ),
            extra={"stripe_ms": stripe_ms},
            baseline="import stripe alone (shown in the detail)",
        ),
        Row(
            SECTION,
            f"webhooks: peak memory after {count:,} / after {count // 10:,} events",
            round(memory["peak_all_mb"] / memory["peak_first_mb"], 3),
            "×",
            Target("<=", 1.1),
            detail=(
                f"tracemalloc peak {memory['peak_all_mb']:.2f} MB "
                f"(first 10 %: {memory['peak_first_mb']:.2f} MB), "
                f"{memory['retained_mb']:.2f} MB still allocated at the end; max RSS "
                f"{memory['maxrss_before_mb']:.0f} MB before, "
                f"{memory['maxrss_after_mb']:.0f} MB after"
                + (
                    " (--quick: 5k events for 200 orders instead of 100k for 1,000)"
                    if quick
                    else ""
                )
            ),
            extra=memory,
            baseline=f"the peak over the first {count // 10:,} events of the same run",
        ),
    ]


if __name__ == "__main__" and sys.argv[1:2] == ["memory"]:
    sys.path.insert(0, HERE)
    print(json.dumps(child_memory(int(sys.argv[2]), int(sys.argv[3]))))
