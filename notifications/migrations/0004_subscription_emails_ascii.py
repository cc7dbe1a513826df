"""Back-in-stock subscriptions' emails rewritten the way config.contacts.normalise_email writes them
now (issue 9): an internationalised domain in its ASCII form, with the email part of `scope_key`
("<sku>:<location or *>:<contact>", unique).

Left as they are, and logged with their ids: an address the validator refuses, and two
subscriptions that would become the same one (the same address stored in both forms). Outbox rows
are history and are not rewritten. Nothing to undo on the way back.
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


def subscription_emails_to_ascii(apps, schema_editor) -> None:
    Subscription = apps.get_model("notifications", "BackInStockSubscription")
    rewrites, refused = {}, []
    rows = Subscription.objects.exclude(email="").values_list("pk", "sku_id", "location_id", "email")
    for pk, sku_id, location_id, email in rows.iterator(chunk_size=BATCH):
        new = _ascii(email)
        if new is None:
            refused.append(pk)
        elif new != email:
            rewrites[pk] = (new, f"{sku_id}:{location_id or '*'}:{new}")
    new_keys = Counter(scope_key for _, scope_key in rewrites.values())
    clashing = {pk for pk, (_, scope_key) in rewrites.items() if new_keys[scope_key] > 1}
    keys = sorted(new_keys)
    for i in range(0, len(keys), BATCH):
        taken = set(
            Subscription.objects.filter(scope_key__in=keys[i : i + BATCH]).values_list("scope_key", flat=True)
        )
        clashing |= {pk for pk, (_, scope_key) in rewrites.items() if scope_key in taken}
    if refused:
        logger.warning(
            "%d subscriptions keep an email the validator refuses (ids %s)", len(refused), sorted(refused)
        )
    if clashing:
        logger.warning(
            "%d back-in-stock subscriptions keep their email: each would become the same subscription "
            "as another one (ids %s)",
            len(clashing),
            sorted(clashing),
        )
    changed = [
        Subscription(pk=pk, email=email, scope_key=scope_key)
        for pk, (email, scope_key) in rewrites.items()
        if pk not in clashing
    ]
    Subscription.objects.bulk_update(changed, ["email", "scope_key"], batch_size=BATCH)


class Migration(migrations.Migration):
    dependencies = [("notifications", "0003_subscription_phones_e164")]

    operations = [migrations.RunPython(subscription_emails_to_ascii, migrations.RunPython.noop)]
