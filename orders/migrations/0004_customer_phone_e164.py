"""Customers' phone numbers rewritten in E.164 by config.contacts.normalise_phone (issue 8).

orders.services.normalise_phone already wrote "+" and digits, but rows written around it (the
admin, load_demo's "+81-3-5555-0001", imports) may hold other forms. This rewrites every phone the
new normaliser reads (national numbers in settings.OMS["PHONE_REGION"] as it is when the migration
runs) and leaves the rest.

Left as they are:
- a phone the normaliser refuses (the SMS channel refuses it too when sending);
- customers whose phones are the same number written two ways (two rows, or one row and a row
  already in E.164): `customer_phone_unique` allows only one of them to hold the E.164 form, and
  no customer is deleted or merged here. They keep their phone and are logged (WARNING, logger of
  this module) with their ids: merge them by hand (orders, notifications and returns point at the
  customer). Find what is left with: Customer.objects.exclude(phone=None).exclude(phone__regex=r"^\\+[0-9]+$").

Nothing to undo on the way back.
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


def customer_phones_to_e164(apps, schema_editor) -> None:
    Customer = apps.get_model("orders", "Customer")
    rewrites = {}  # pk -> E.164 phone
    rows = Customer.objects.exclude(phone=None).exclude(phone="").values_list("pk", "phone")
    for pk, phone in rows.iterator(chunk_size=BATCH):
        e164 = _e164(phone)
        if e164 is not None and e164 != phone:
            rewrites[pk] = e164
    # A new phone is always in E.164 and every row being rewritten is not: a clash is with another
    # row being rewritten to the same number, or with a row that already holds it.
    new_phones = Counter(rewrites.values())
    clashing = {pk for pk, phone in rewrites.items() if new_phones[phone] > 1}
    phones = sorted(new_phones)
    for i in range(0, len(phones), BATCH):
        taken = set(Customer.objects.filter(phone__in=phones[i : i + BATCH]).values_list("phone", flat=True))
        clashing |= {pk for pk, phone in rewrites.items() if phone in taken}
    if clashing:
        logger.warning(
            "%d customers keep their phone: another customer has the same number (ids %s); merge them by hand",
            len(clashing),
            sorted(clashing),
        )
    changed = [Customer(pk=pk, phone=phone) for pk, phone in rewrites.items() if pk not in clashing]
    Customer.objects.bulk_update(changed, ["phone"], batch_size=BATCH)


class Migration(migrations.Migration):
    dependencies = [("orders", "0003_indexes_without_duplicates")]

    operations = [migrations.RunPython(customer_phones_to_e164, migrations.RunPython.noop)]
