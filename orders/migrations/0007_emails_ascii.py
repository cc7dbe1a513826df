"""Emails rewritten the way config.contacts.normalise_email writes them now (issue 9).

Until issue 9 an address was stored as typed (lower-cased): an internationalised domain in Unicode
("hanako@bücher.example"), and some addresses the new validator refuses (emoji, a trailing dot).
Now every new address is in its ASCII form ("hanako@xn--bcher-kva.example"), which is what the
schema's `format: email` promises. This rewrites customers' emails and the contact emails of
orders the same way.

Left as they are:
- an address the validator refuses (logged with the customers' ids; mail to it was failing anyway);
- a customer whose address would become another customer's (`customer_email_unique`): the same
  address stored in both forms. Logged with the ids: merge them by hand.

Nothing to undo on the way back.
"""

import logging
from collections import Counter

from django.db import migrations

from config.contacts import normalise_email
from config.errors import InvalidInput

logger = logging.getLogger(__name__)
BATCH = 1000


def _ascii(email: str) -> str | None:
    try:
        return normalise_email(email)
    except InvalidInput:
        return None


def emails_to_ascii(apps, schema_editor) -> None:
    Customer = apps.get_model("orders", "Customer")
    Order = apps.get_model("orders", "Order")

    rewrites, refused = {}, []
    rows = Customer.objects.exclude(email=None).exclude(email="").values_list("pk", "email")
    for pk, email in rows.iterator(chunk_size=BATCH):
        new = _ascii(email)
        if new is None:
            refused.append(pk)
        elif new != email:
            rewrites[pk] = new
    new_emails = Counter(rewrites.values())
    clashing = {pk for pk, email in rewrites.items() if new_emails[email] > 1}
    emails = sorted(new_emails)
    for i in range(0, len(emails), BATCH):
        taken = set(Customer.objects.filter(email__in=emails[i : i + BATCH]).values_list("email", flat=True))
        clashing |= {pk for pk, email in rewrites.items() if email in taken}
    if refused:
        logger.warning(
            "%d customers keep an email the validator refuses (ids %s)", len(refused), sorted(refused)
        )
    if clashing:
        logger.warning(
            "%d customers keep their email: another customer has the same address (ids %s); merge them by hand",
            len(clashing),
            sorted(clashing),
        )
    changed = [Customer(pk=pk, email=email) for pk, email in rewrites.items() if pk not in clashing]
    Customer.objects.bulk_update(changed, ["email"], batch_size=BATCH)

    orders = []
    rows = (
        Order.objects.exclude(contact_email=None).exclude(contact_email="").values_list("pk", "contact_email")
    )
    for pk, email in rows.iterator(chunk_size=BATCH):
        new = _ascii(email)
        if new is not None and new != email:
            orders.append(Order(pk=pk, contact_email=new))
    Order.objects.bulk_update(orders, ["contact_email"], batch_size=BATCH)


class Migration(migrations.Migration):
    dependencies = [("orders", "0006_pickup_code_attempts")]

    operations = [migrations.RunPython(emails_to_ascii, migrations.RunPython.noop)]
