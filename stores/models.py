from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class LocationKind(models.TextChoices):
    WAREHOUSE = "warehouse", "Warehouse"  # ships orders, no customers on site
    STORE = "store", "Store"  # a shop: may ship, offer pickup and take returns


class Role(models.TextChoices):
    STOREFRONT = (
        "storefront",
        "Storefront (service account)",
    )  # the e-commerce frontend, acts for any customer
    ASSOCIATE = "associate", "Store associate"  # works pickups and returns at their stores
    WAREHOUSE = "warehouse", "Warehouse staff"  # works fulfillment queues at their warehouses
    MANAGER = "manager", "Manager"  # everything, at their locations (network_wide: at every location)
    LOCKER = "locker", "Locker controller (device)"  # opens the lockers of its stores, nothing else


class Location(models.Model):
    """A warehouse or a store: one node of the inventory network."""

    code = models.SlugField(max_length=32, unique=True, help_text="Human code, e.g. TKY-SHIBUYA")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=LocationKind.choices)
    address = models.CharField(max_length=400, blank=True)
    city = models.CharField(max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=2, default="JP")
    latitude = models.FloatField(validators=[MinValueValidator(-90), MaxValueValidator(90)])
    longitude = models.FloatField(validators=[MinValueValidator(-180), MaxValueValidator(180)])
    timezone = models.CharField(max_length=64, default="Asia/Tokyo")
    # {"mon": ["10:00", "20:00"], ..., "sun": null}: a day maps to opening and closing time, null is closed.
    opening_hours = models.JSONField(default=dict, blank=True)
    ships_orders = models.BooleanField(default=True)
    offers_pickup = models.BooleanField(default=False)
    accepts_returns = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    # Lower is preferred by routing when everything else is equal.
    fulfillment_priority = models.PositiveIntegerField(default=100)
    # Fulfillments this location can take on per day; 0 = unlimited.
    daily_capacity = models.PositiveIntegerField(default=0)
    phone = models.CharField(max_length=32, blank=True)
    # Pickup (docs/orders.md, "Pickup window"): a ready order waits this many days, to the end of the
    # last day in the store's timezone; the customer is reminded this many days before that end
    # (0: no reminder).
    pickup_window_days = models.PositiveSmallIntegerField(
        default=7, validators=[MinValueValidator(1), MaxValueValidator(60)]
    )
    pickup_reminder_days = models.PositiveSmallIntegerField(default=2, validators=[MaxValueValidator(60)])
    # Ship to store (docs/orders.md, "Ship to store"): a pickup order for goods the store lacks is
    # accepted, the missing units sent from a warehouse; they take `transit_days` store days to arrive.
    ship_to_store = models.BooleanField(
        default=False, help_text="Accepts pickup orders for goods it lacks, sent from a warehouse."
    )
    transit_days = models.PositiveSmallIntegerField(
        default=2,
        validators=[MaxValueValidator(30)],
        help_text="Days for goods from a warehouse to reach this store (the date promised to the customer).",
    )

    class Meta:
        ordering = ["code"]
        indexes = [models.Index(fields=["latitude", "longitude"], name="location_latlng_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(latitude__gte=-90, latitude__lte=90), name="location_latitude_range"
            ),
            models.CheckConstraint(
                condition=models.Q(longitude__gte=-180, longitude__lte=180), name="location_longitude_range"
            ),
            models.CheckConstraint(
                condition=models.Q(pickup_window_days__gte=1, pickup_window_days__lte=60),
                name="location_pickup_window_range",
            ),
            models.CheckConstraint(
                condition=models.Q(pickup_reminder_days__lte=60), name="location_pickup_reminder_range"
            ),
            models.CheckConstraint(
                condition=models.Q(transit_days__lte=30), name="location_transit_days_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.name})"


class StaffProfile(models.Model):
    """An API or admin user's role. Staff roles act only at the locations they are assigned to."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_profile"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    # A manager of the whole network: acts at every location, assigned or not. Managers only; a
    # manager without it acts at their assigned locations only (none: nowhere).
    network_wide = models.BooleanField(
        default=False,
        help_text="Managers only: acts at every location of the network (otherwise only the assigned ones).",
    )

    def __str__(self) -> str:
        return f"{self.user} ({self.role}{', network' if self.network_wide else ''})"

    def clean(self) -> None:
        if self.network_wide and self.role != Role.MANAGER:
            raise ValidationError({"network_wide": "Only a manager can act for the whole network."})


class StaffAssignment(models.Model):
    """A staff user works at a location."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="assignments")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "location"], name="assignment_unique")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.location.code}"


class PickupPointKind(models.TextChoices):
    LOCKER = "locker", "Locker bank"  # compartments the customer opens with a code, no staff present


class PickupPoint(models.Model):
    """A place other than the counter where a store's pickups wait: a locker bank (docs/orders.md,
    "Lockers"). It belongs to one store (a location of kind store that offers pickup): the store's
    associates load it, and its orders are the store's orders."""

    code = models.SlugField(max_length=32, unique=True, help_text="The code in /lockers/{code}/, e.g. SBY-L1")
    store = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="pickup_points")
    kind = models.CharField(max_length=16, choices=PickupPointKind.choices, default=PickupPointKind.LOCKER)
    name = models.CharField(max_length=200)
    # Where to find it, for the customer's message ("by the east entrance").
    directions = models.CharField(max_length=255, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} ({self.name})"

    def clean(self) -> None:
        store = getattr(self, "store", None) if self.store_id else None
        if store is not None and (store.kind != LocationKind.STORE or not store.offers_pickup):
            raise ValidationError({"store": "A pickup point belongs to a store that offers pickup."})


class CompartmentSize(models.TextChoices):
    SMALL = "S", "Small"
    MEDIUM = "M", "Medium"
    LARGE = "L", "Large"


class Compartment(models.Model):
    """One door of a locker bank. What is in it is the fulfillment pointing at it
    (orders.Fulfillment.compartment; one live order per compartment, a DB constraint there)."""

    pickup_point = models.ForeignKey(PickupPoint, on_delete=models.CASCADE, related_name="compartments")
    label = models.CharField(max_length=8, help_text="As printed on the door, e.g. A3")
    size = models.CharField(max_length=1, choices=CompartmentSize.choices, blank=True)
    # Out of service (a broken door): nothing is loaded into it.
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["pickup_point_id", "label"]
        constraints = [
            models.UniqueConstraint(fields=["pickup_point", "label"], name="compartment_label_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.pickup_point.code}/{self.label}"


class TokenUse(models.Model):
    """When an API token was last used (the token admin's "last use").

    Written by the token authentication at most once per OMS["TOKEN_USE_RESOLUTION_SECONDS"] per
    token, never on every request; a token never used has no row. Goes with its token.
    """

    token = models.OneToOneField(
        settings.KNOX_TOKEN_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="usage"
    )
    last_used_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.token.token_key} used {self.last_used_at:%Y-%m-%d %H:%M}"
