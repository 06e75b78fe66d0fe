"""``python manage.py cartpay_reconcile``: one reconcile run with the settings' façade
(run it from cron or a scheduler every few minutes)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ....._errors import CartpayError
from ...conf import get_payments


class Command(BaseCommand):
    help = "Synchronise stuck orders from Stripe and report orphaned intents (cartpay)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than", type=int, default=15, help="minutes (default %(default)s)"
        )
        parser.add_argument("--limit", type=int, default=500, help="default %(default)s")
        parser.add_argument(
            "--abandon-after",
            type=int,
            default=None,
            help="minutes: cancel orders and intents older than this that never took money",
        )
        parser.add_argument(
            "--refund-orphans",
            action="store_true",
            help="give back money no order owns (needs --abandon-after)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        abandon = options["abandon_after"]
        try:
            report = get_payments().reconcile(
                older_than=timedelta(minutes=options["older_than"]),
                limit=options["limit"],
                abandon_after=None if abandon is None else timedelta(minutes=abandon),
                refund_orphans=options["refund_orphans"],
            )
        except CartpayError as exc:
            raise CommandError(f"reconcile failed: {type(exc).__name__}: {exc}") from exc
        write = self.stdout.write
        write(f"checked   {len(report.checked)} order(s) older than {options['older_than']} min")
        for ref, action in report.actions:  # repairs, cancellations, refunds, in order
            write(f"{ref}: {action}")
        for orphan in report.orphaned:
            write(
                f"orphaned  cart {orphan.cart_id}: intent {orphan.intent_id} took "
                f"{orphan.amount} {orphan.currency} but was never checked out"
            )
        for ref, error in report.errors:
            self.stderr.write(f"error     {ref}: {error}")
        if report.errors:
            raise CommandError(f"{len(report.errors)} error(s)")
