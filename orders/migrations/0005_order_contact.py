"""Orders keep the contact as given on them (issue 9): `contact_email`, `contact_phone`,
`contact_name`. What an order shows is its own contact, never the stored customer's other details.

Existing orders did not record what was given, so they are backfilled from their customer as it
is now (the best there is: that is what they showed until now). One UPDATE with three correlated
subqueries; nothing to undo on the way back (the columns go).
"""

from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def contact_from_customer(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    Customer = apps.get_model("orders", "Customer")
    customer = Customer.objects.filter(pk=OuterRef("customer_id"))
    Order.objects.update(
        contact_email=Subquery(customer.values("email")[:1]),
        contact_phone=Subquery(customer.values("phone")[:1]),
        contact_name=Subquery(customer.values("name")[:1]),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0004_customer_phone_e164"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="contact_email",
            field=models.EmailField(blank=True, max_length=254, null=True),
        ),
        migrations.AddField(
            model_name="order",
            name="contact_name",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AddField(
            model_name="order",
            name="contact_phone",
            field=models.CharField(blank=True, help_text="E.164", max_length=20, null=True),
        ),
        migrations.RunPython(contact_from_customer, migrations.RunPython.noop, elidable=True),
    ]
