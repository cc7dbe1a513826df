"""Back-in-stock subscriptions' phone numbers rewritten in E.164 (issue 8).

Until issue 8 a subscription kept its phone as typed less spaces, hyphens and brackets
("09012345678"), while customers were kept in E.164 ("+819012345678"): the same person was two
contacts, and an SMS could go to a number the provider cannot route. New subscriptions go through
config.contacts.normalise_phone; this rewrites the existing ones the same way (national numbers read
in settings.OMS["PHONE_REGION"] as it is when the migration runs), together with the phone part of
their `scope_key` ("<sku>:<location or *>:<contact>", unique).

Left as they are:
- a phone the normaliser refuses (the SMS channel refuses it too when sending: that message fails
  for good, with "not a phone number" as its error);
- two subscriptions that would become the same one: the same SKU and scope with the number written
  two ways ("09012345678" and "+819012345678"), or one that clashes with a row already in E.164.
  Both keep their phone and scope key and are logged (WARNING, logger of this module) with their
  ids; the shopper may get two alerts for one restock until one of the rows is unsubscribed. Find
  them with: BackInStockSubscription.objects.exclude(phone="").exclude(phone__startswith="+").

Outbox rows (Notification.recipient) are history and are not rewritten: the SMS channel normalises
the recipient when it sends. Nothing to undo on the way back.
"""

import logging
from collections import Counter

from django.db import migrations

from config.contacts import normalise_phone
from config.errors import InvalidInput

logger = logging.getLogger(__name__)
BATCH = 1000


def _e164(phone: str) -> str | None:
    try:
        return normalise_phone(phone)
    except InvalidInput:
        return None


def subscription_phones_to_e164(apps, schema_editor) -> None:
    Subscription = apps.get_model("notifications", "BackInStockSubscription")
    rewrites = {}  # pk -> (phone, scope_key)
    rows = Subscription.objects.exclude(phone="").values_list("pk", "sku_id", "location_id", "phone")
    for pk, sku_id, location_id, phone in rows.iterator(chunk_size=BATCH):
        e164 = _e164(phone)
        if e164 is not None and e164 != phone:
            rewrites[pk] = (e164, f"{sku_id}:{location_id or '*'}:{e164}")
    new_keys = Counter(scope_key for _, scope_key in rewrites.values())
    clashing = {pk for pk, (_, scope_key) in rewrites.items() if new_keys[scope_key] > 1}
    keys = sorted(new_keys)
    for i in range(0, len(keys), BATCH):
        taken = set(Subscription.objects.filter(scope_key__in=keys[i : i + BATCH]).values_list("scope_key", flat=True))
        clashing |= {pk for pk, (_, scope_key) in rewrites.items() if scope_key in taken}
    if clashing:
        logger.warning(
            "%d back-in-stock subscriptions keep their phone: each would become the same subscription "
            "as another one (ids %s)",
            len(clashing),
            sorted(clashing),
        )
    changed = []
    for pk, (phone, scope_key) in rewrites.items():
        if pk not in clashing:
            changed.append(Subscription(pk=pk, phone=phone, scope_key=scope_key))
    Subscription.objects.bulk_update(changed, ["phone", "scope_key"], batch_size=BATCH)


class Migration(migrations.Migration):
    dependencies = [("notifications", "0002_outbox_indexes_without_duplicates")]

    operations = [migrations.RunPython(subscription_phones_to_e164, migrations.RunPython.noop)]
