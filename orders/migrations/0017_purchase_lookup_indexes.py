"""The returns desk finds a purchase by the contact given on the order (issue 11,
orders.selectors.purchases_find): partial indexes on Order.contact_email and Order.contact_phone
(an order often has only one of the two). Order.number, Customer.email and Customer.phone are
indexed already by their unique constraints, Order.customer by its foreign key."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0016_returns"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="order",
            index=models.Index(
                condition=models.Q(("contact_email__isnull", False)),
                fields=["contact_email"],
                name="order_contact_email_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(
                condition=models.Q(("contact_phone__isnull", False)),
                fields=["contact_phone"],
                name="order_contact_phone_idx",
            ),
        ),
    ]
