"""The Pickups page: the store counter, for associates (docs/orders.md, "The Pickups page").

The change list is the queue of one's stores (curbside arrivals first) with today's counts on top
and a search by what the customer says or shows (pickup code, order number, phone, email, name);
an order's page is the card the associate serves the customer from, with one button per step.
Every button calls the same service as the API (orders.services), with channel "admin", so it is
in the order's timeline; a refused step (a wrong code, extending twice) is a message on the card
and changes nothing but what the service itself records (a wrong code is counted and logged).

Reads are orders.selectors' counter_* functions (one place for what a tile means). Who may act
where is stores.selectors (an associate: their stores only; other stores' pickups are not listed
and their cards redirect to the list).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Prefetch
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from config.contacts import display_phone
from config.errors import DomainError, InvalidInput
from stores.models import Role
from stores.selectors import user_role

from . import services
from .models import FulfillmentLine, FulfillmentStatus, NoteChannel, Pickup
from .selectors import (
    COUNTER_TILES,
    PICKUP_METHODS,
    counter_card,
    counter_counts,
    counter_lockers,
    counter_pickups,
    counter_queue_ordering,
    counter_search,
    counter_stores,
    counter_tile_filters,
)
from .services.window import last_day, store_zone

COUNTER_ROLES = (Role.ASSOCIATE, Role.MANAGER)
CHANNEL = "admin"


def _works_counter(user) -> bool:
    return bool(user.is_active and user.is_staff and (user.is_superuser or user_role(user) in COUNTER_ROLES))


class StoreFilter(admin.SimpleListFilter):
    title = "store"
    parameter_name = "store"

    def lookups(self, request, model_admin):
        return [(s.code, s.name) for s in counter_stores(user=request.user)]

    def queryset(self, request, queryset):
        return queryset.filter(location__code=self.value()) if self.value() else queryset


class TileFilter(admin.SimpleListFilter):
    title = "today"
    parameter_name = "tile"

    def lookups(self, request, model_admin):
        return list(COUNTER_TILES.items())

    def queryset(self, request, queryset):
        if self.value() not in COUNTER_TILES:
            return queryset
        stores = list(counter_stores(user=request.user))
        return queryset.filter(counter_tile_filters(stores=stores)[self.value()])


def _at_store(f: Pickup, when):
    """A time as the store's clock shows it."""
    return timezone.localtime(when, store_zone(f.location))


def _whole(text: str) -> int | None:
    """A whole number as typed (full-width digits too), or None: not "²" (a digit to isdigit(), not
    to int()) nor thousands of digits (beyond int()'s limit); the services check the range."""
    return int(text) if text.isdecimal() and len(text) <= 9 else None


def _taken(post) -> list[services.TakenIn]:
    """The partial hand-over form: one "taken_<SKU code>" box per line (blank counts as 0)."""
    taken = []
    for key, value in post.items():
        if not key.startswith("taken_"):
            continue
        quantity = _whole((value or "").strip() or "0")
        if quantity is None:
            raise InvalidInput(f"How many of {key[6:]} were taken? A whole number, please.")
        taken.append(services.TakenIn(sku=key[6:], quantity=quantity))
    return taken


def _locker_choice(post) -> tuple[str, str]:
    """The "load into a locker" select: "<locker code>:<compartment label>"."""
    locker, _, compartment = (post.get("compartment") or "").partition(":")
    if not locker or not compartment:
        raise InvalidInput("Choose a free compartment.")
    return locker, compartment


def _days(post) -> int:
    days = _whole((post.get("days") or "").strip())
    if days is None:
        raise InvalidInput("Extend by how many days? A whole number, please.")
    return days


# The buttons of the card: step -> (what the message says when it worked, the service call).
Step = Callable[[Pickup, dict, object], object]
STEPS: dict[str, tuple[str, Step]] = {
    "start": (
        "Picking started.",
        lambda f, post, user: services.fulfillment_start(fulfillment_id=f.pk, user=user, channel=CHANNEL),
    ),
    "ready": (
        "Ready: the customer has been sent the pickup code.",
        lambda f, post, user: services.fulfillment_ready(fulfillment_id=f.pk, user=user, channel=CHANNEL),
    ),
    "arrived": (
        "Marked as arrived.",
        lambda f, post, user: services.order_customer_arrived(
            number=f.order.number, note=post.get("note", ""), user=user, channel=CHANNEL
        ),
    ),
    "collect": (
        "Handed over: the order is collected.",
        lambda f, post, user: services.fulfillment_collect(
            fulfillment_id=f.pk, pickup_code=post.get("pickup_code", ""), user=user, channel=CHANNEL
        ),
    ),
    "partial": (
        "Handed over in part: what was not taken is back in stock and refunded.",
        lambda f, post, user: services.fulfillment_collect(
            fulfillment_id=f.pk,
            pickup_code=post.get("pickup_code", ""),
            lines=_taken(post),
            user=user,
            channel=CHANNEL,
        ),
    ),
    "extend": (
        "Pickup window extended; the customer has been told.",
        lambda f, post, user: services.fulfillment_extend_pickup(
            fulfillment_id=f.pk, days=_days(post), reason=post.get("reason", ""), user=user, channel=CHANNEL
        ),
    ),
    "new_code": (
        "A new pickup code has been sent to the customer.",
        lambda f, post, user: services.pickup_code_reissue(
            fulfillment_id=f.pk, reason=post.get("reason", ""), user=user, channel=CHANNEL
        ),
    ),
    "locker": (
        "Loaded into the locker: the customer has been sent the locker, the compartment and a new code.",
        lambda f, post, user: services.locker_load(
            fulfillment_id=f.pk,
            locker=_locker_choice(post)[0],
            compartment=_locker_choice(post)[1],
            user=user,
            channel=CHANNEL,
        ),
    ),
    "unload": (
        "Taken out of the locker: the order waits at the counter.",
        lambda f, post, user: services.locker_unload(
            fulfillment_id=f.pk, reason=post.get("reason", ""), user=user, channel=CHANNEL
        ),
    ),
    "note": (
        "Note added.",
        lambda f, post, user: services.order_note_add(
            number=f.order.number, text=post.get("text", ""), channel=NoteChannel.STORE, user=user
        ),
    ),
}


@admin.register(Pickup)
class PickupAdmin(admin.ModelAdmin):
    change_list_template = "admin/orders/pickup/change_list.html"
    list_display = ("order_number", "customer", "how", "status", "items", "waiting", "store")
    list_display_links = ("order_number",)
    list_filter = (TileFilter, StoreFilter)
    list_per_page = 50
    show_full_result_count = False
    sortable_by = ()
    actions = None
    # The search box; what it matches is counter_search (get_search_results), not these fields.
    search_fields = ("order__number",)
    search_help_text = "Pickup code, order number, phone (090-1234-5678 or +81 90…), email or name"

    # --- who may use it ---------------------------------------------------------------------------

    def has_module_permission(self, request):
        return _works_counter(request.user)

    def has_view_permission(self, request, obj=None):
        return _works_counter(request.user)

    def has_change_permission(self, request, obj=None):
        return _works_counter(request.user)  # the buttons; no field is ever edited

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    # --- the queue --------------------------------------------------------------------------------

    def get_queryset(self, request):
        stores = counter_stores(user=request.user).values("pk")
        return (
            counter_pickups(store_ids=stores, qs=Pickup.objects.all())
            .select_related("order", "location", "compartment__pickup_point")
            .prefetch_related(
                Prefetch("lines", queryset=FulfillmentLine.objects.select_related("sku").order_by("pk"))
            )
        )

    def get_ordering(self, request):
        return counter_queue_ordering()

    def get_search_results(self, request, queryset, search_term):
        return counter_search(queryset, search_term), False

    def changelist_view(self, request, extra_context=None):
        stores = list(counter_stores(user=request.user))
        chosen = request.GET.get("store")
        shown = [s for s in stores if s.code == chosen] or stores
        counts = counter_counts(stores=shown) if shown else dict.fromkeys(COUNTER_TILES, 0)
        context = {
            "title": f"Pickups at {shown[0].name}" if len(shown) == 1 else "Pickups",
            "counter_stores": stores,
            "counter_store": shown[0] if len(shown) == 1 else None,
            "counter_tiles": [(name, label, counts[name]) for name, label in COUNTER_TILES.items()],
            "counter_tile": request.GET.get("tile", ""),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=context)

    @admin.display(description="Order")
    def order_number(self, f):
        return f.order.number

    @admin.display(description="Customer")
    def customer(self, f):
        return f.order.contact_name or display_phone(f.order.contact_phone) or f.order.contact_email or "—"

    @admin.display(description="How")
    def how(self, f):
        if f.compartment_id and f.status == FulfillmentStatus.READY_FOR_PICKUP:
            return f"In locker {f.compartment.pickup_point.code}, {f.compartment.label}"
        if f.customer_arrived_at:
            return f"{f.get_method_display()}: arrived {_at_store(f, f.customer_arrived_at):%H:%M}"
        return f.get_method_display()

    @admin.display(description="Items")
    def items(self, f):
        return ", ".join(f"{ln.quantity} x {ln.sku.code}" for ln in f.lines.all())

    @admin.display(description="Waiting")
    def waiting(self, f):
        if f.status == FulfillmentStatus.AWAITING_TRANSFER and f.ready_by:
            return f"due {f.ready_by:%a %d %b} (in transit)"
        if f.status == FulfillmentStatus.READY_FOR_PICKUP and f.pickup_expires_at:
            return f"until {last_day(location=f.location, expires_at=f.pickup_expires_at):%a %d %b}"
        return f"since {_at_store(f, f.created_at):%a %H:%M}"

    @admin.display(description="Store")
    def store(self, f):
        return f.location.code

    # --- the order card ---------------------------------------------------------------------------

    def get_object(self, request, object_id, from_field=None):
        """Any pickup of one's stores, whatever its status (the card stays after the hand-over)."""
        if not str(object_id).isdigit():
            return None
        stores = counter_stores(user=request.user).values("pk")
        return (
            Pickup.objects.filter(pk=object_id, location_id__in=stores, method__in=PICKUP_METHODS)
            .select_related("order", "location", "compartment__pickup_point")
            .first()
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        f = self.get_object(request, object_id)
        if f is None or not self.has_view_permission(request, f):
            # Another store's, collected long ago, or no such pickup: back to the queue, nothing said
            # about which (public API only: no ModelAdmin private helper).
            self.message_user(request, "No such pickup at your stores.", messages.WARNING)
            return HttpResponseRedirect(reverse("admin:orders_pickup_changelist"))
        if request.method == "POST":
            return self._step(request, f)
        card = counter_card(fulfillment=f)
        lockers = counter_lockers(fulfillment=f)
        steps = self._steps_for(f, can_load=any(free for _, free in lockers))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Order {f.order.number}",
            "card": card,
            "f": f,
            "order": f.order,
            "contact_phone": display_phone(f.order.contact_phone),
            "store_timezone": store_zone(f.location),
            "last_day": f.pickup_expires_at and last_day(location=f.location, expires_at=f.pickup_expires_at),
            "steps": steps,
            "lockers": lockers,
            "max_extension_days": settings.OMS["PICKUP_EXTENSION_MAX_DAYS"],
            "queue_url": reverse("admin:orders_pickup_changelist"),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/orders/pickup/card.html", context)

    def _steps_for(self, f: Pickup, *, can_load: bool) -> set[str]:
        """The buttons the card shows for the fulfillment's status (the services decide anyway)."""
        s = FulfillmentStatus
        steps = {"note"}
        if f.status == s.PENDING:
            steps |= {"start"}
        if f.status == s.PICKING:
            steps |= {"ready"}
        in_locker = f.compartment_id is not None and f.status == s.READY_FOR_PICKUP
        if in_locker:
            steps |= {"unload", "new_code"}
        elif f.status == s.READY_FOR_PICKUP:
            steps |= {"collect", "partial", "new_code"}
            if can_load:
                steps.add("locker")
        if f.status == s.READY_FOR_PICKUP and f.pickup_extended_at is None:
            steps.add("extend")
        if f.status in (s.PENDING, s.PICKING, s.READY_FOR_PICKUP) and f.customer_arrived_at is None:
            steps.add("arrived")
        return steps

    def _step(self, request, f: Pickup):
        step = request.POST.get("step", "")
        card_url = reverse("admin:orders_pickup_change", args=[f.pk])
        if step not in STEPS or not self.has_change_permission(request, f):
            self.message_user(request, "That button is not available here.", messages.ERROR)
            return HttpResponseRedirect(card_url)
        done, call = STEPS[step]
        try:
            call(f, request.POST, request.user)
        except DomainError as e:
            self.message_user(request, e.message, messages.ERROR)
        else:
            self.message_user(request, done, messages.SUCCESS)
        return HttpResponseRedirect(card_url)
