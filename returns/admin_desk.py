"""The Returns desk: a store's desk for taking back online and in-store purchases (docs/returns.md,
"The Returns desk").

The change list is the desk's queue (returns expected at or received at one's stores, those still
to receive first) with a search by what the customer shows or says: the return's QR or code, a
return or order number, the receipt code from the order confirmation, their email or phone (any
store's purchase, by exact identifiers only: orders.selectors.purchases_find). Orders found are
listed above the queue with their returns and a "Start a return" link. A return's page is the card
the associate works from: the lines with the reason the customer gave, every note (help desk,
chat, call centre, store) with who wrote it and on which channel, the order's timeline, the
customer's other orders and returns, and one form to receive every line with its condition.

Every button calls the same service as the API (returns.services), channel "admin"; a refused
step is a message on the card and changes nothing.
"""

from __future__ import annotations

from collections import defaultdict

from django.contrib import admin, messages
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from config.contacts import display_phone
from config.errors import DomainError, InvalidInput
from orders.models import NoteChannel
from orders.selectors import purchases_find
from orders.services.window import store_zone
from stores.models import Role
from stores.selectors import user_role

from .models import DeskReturn, Return, ReturnCondition, ReturnMethod, ReturnReason, ReturnStatus
from .selectors import desk_return_by_code, desk_stores, return_card, visible_returns
from .services import (
    ReceiveLineIn,
    ReturnLineIn,
    return_cancel,
    return_note_add,
    return_receive,
    return_request,
)

DESK_ROLES = (Role.ASSOCIATE, Role.MANAGER)
CHANNEL = "admin"


def _works_desk(user) -> bool:
    return bool(user.is_active and user.is_staff and (user.is_superuser or user_role(user) in DESK_ROLES))


def _count(text: str, *, what: str) -> int:
    """A quantity typed in a form: a whole number of at most 6 digits (blank: 0)."""
    text = (text or "").strip() or "0"
    if not text.isdecimal() or len(text) > 6:
        raise InvalidInput(f"How many of {what}? A whole number, please.")
    return int(text)


class StoreFilter(admin.SimpleListFilter):
    title = "store"
    parameter_name = "store"

    def lookups(self, request, model_admin):
        return [(s.code, s.name) for s in desk_stores(user=request.user)]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return queryset.filter(expected_location__code=self.value()) | queryset.filter(
            received_at_location__code=self.value()
        )


@admin.register(DeskReturn)
class ReturnsDeskAdmin(admin.ModelAdmin):
    change_list_template = "admin/returns/deskreturn/change_list.html"
    list_display = ("return_number", "who", "order_number", "status", "how", "items", "asked")
    list_display_links = ("return_number",)
    list_filter = ("status", StoreFilter)
    list_per_page = 50
    show_full_result_count = False
    sortable_by = ()
    actions = None
    # The search box; what it finds is get_search_results and the orders above the list.
    search_fields = ("number",)
    search_help_text = (
        "Return QR or code, return or order number, receipt code, email or phone (090-1234-5678)"
    )

    # --- who may use it ---------------------------------------------------------------------------

    def has_module_permission(self, request):
        return _works_desk(request.user)

    def has_view_permission(self, request, obj=None):
        return _works_desk(request.user)

    def has_change_permission(self, request, obj=None):
        return _works_desk(request.user)  # the buttons; no field is ever edited

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    # --- the queue --------------------------------------------------------------------------------

    def get_queryset(self, request):
        return visible_returns(
            DeskReturn.objects.select_related("order", "expected_location", "received_at_location"),
            request.user,
        ).prefetch_related("lines__sku")

    def get_ordering(self, request):
        # Still to receive first (oldest first), then the others, newest first.
        return ["-status", "pk"]

    def get_search_results(self, request, queryset, search_term):
        text = " ".join((search_term or "").split()).upper()
        if not text:
            return queryset, False
        # ... and the returns of the purchases the same text found (changelist_view's search).
        found = getattr(request, "desk_found_orders", [])
        return queryset.filter(Q(number=text) | Q(order__number=text) | Q(order_id__in=found)), False

    def changelist_view(self, request, extra_context=None):
        text = request.GET.get("q", "")
        by_code = desk_return_by_code(text=text, user=request.user) if text else None
        if by_code is not None:  # the customer showed the return's QR or code: straight to it
            return HttpResponseRedirect(self._card_url(by_code, code=by_code.code))
        found = purchases_find(text=text, user=request.user) if text.strip() else []
        request.desk_found_orders = [hit.order.pk for hit in found]
        returns_of = defaultdict(list)  # one query for the returns of every purchase found
        for ret in Return.objects.filter(order_id__in=request.desk_found_orders).order_by("pk"):
            returns_of[ret.order_id].append(ret)
        stores = list(desk_stores(user=request.user))
        context = {
            "title": f"Returns desk at {stores[0].name}" if len(stores) == 1 else "Returns desk",
            "found": [(hit, returns_of[hit.order.pk], display_phone(hit.contact_phone)) for hit in found],
            "desk_searched": bool(text.strip()),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=context)

    @admin.display(description="Return")
    def return_number(self, r):
        return r.number

    @admin.display(description="Customer")
    def who(self, r):
        o = r.order
        return o.contact_name or display_phone(o.contact_phone) or o.contact_email or "-"

    @admin.display(description="Order")
    def order_number(self, r):
        return r.order.number

    @admin.display(description="How")
    def how(self, r):
        where = r.received_at_location or r.expected_location
        return f"{r.get_method_display()}{f' at {where.code}' if where else ''}"

    @admin.display(description="Items")
    def items(self, r):
        return ", ".join(f"{ln.quantity} x {ln.sku.code}" for ln in r.lines.all())

    @admin.display(description="Asked")
    def asked(self, r):
        return r.created_at.strftime("%d %b %H:%M")

    # --- start a return for an order found --------------------------------------------------------

    def get_urls(self):
        start = path(
            "start/<str:number>/",
            self.admin_site.admin_view(self.start_view),
            name="returns_deskreturn_start",
        )
        return [start, *super().get_urls()]

    def _order_found(self, request, number: str):
        """The order with exactly this number, when the desk may find it (purchases_find's rule)."""
        hits = purchases_find(text=number, user=request.user, limit=1)
        return hits[0].order if hits and hits[0].order.number == number.upper() else None

    def start_view(self, request, number: str):
        if not self.has_change_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        order = self._order_found(request, number)
        stores = list(desk_stores(user=request.user))
        if order is None or not stores:
            self.message_user(request, f"No order {number} for this desk.", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:returns_deskreturn_changelist"))
        if request.method == "POST":
            try:
                ret = return_request(
                    order_number=order.number,
                    lines=self._asked(request.POST, order),
                    method=ReturnMethod.IN_STORE,
                    location=request.POST.get("store") or stores[0].code,
                    note=request.POST.get("note", ""),
                    user=request.user,
                    channel=CHANNEL,
                )
            except DomainError as e:
                self.message_user(request, e.message, messages.ERROR)
            else:
                self.message_user(
                    request, f"Return {ret.number} started: receive it below.", messages.SUCCESS
                )
                return HttpResponseRedirect(self._card_url(ret))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Start a return for order {order.number}",
            "order": order,
            "lines": list(order.lines.select_related("sku").order_by("pk")),
            "reasons": ReturnReason.choices,
            "stores": stores,
            "queue_url": reverse("admin:returns_deskreturn_changelist"),
        }
        return TemplateResponse(request, "admin/returns/deskreturn/start.html", context)

    def _asked(self, post, order) -> list[ReturnLineIn]:
        asked = []
        for ln in order.lines.select_related("sku").order_by("pk"):
            quantity = _count(post.get(f"qty_{ln.sku.code}", ""), what=ln.sku.code)
            if quantity:
                asked.append(
                    ReturnLineIn(
                        sku=ln.sku.code,
                        quantity=quantity,
                        reason=post.get(f"reason_{ln.sku.code}") or ReturnReason.OTHER,
                        reason_text=post.get(f"text_{ln.sku.code}", ""),
                    )
                )
        if not asked:
            raise InvalidInput("Nothing to return: give a quantity for at least one line.")
        return asked

    # --- the return's card ------------------------------------------------------------------------

    def _card_url(self, ret, *, code: str = "") -> str:
        url = reverse("admin:returns_deskreturn_change", args=[ret.pk])
        return f"{url}?code={code}" if code else url

    def get_object(self, request, object_id, from_field=None):
        """A return the user sees, or any return opened with its code (the customer shows it)."""
        if not str(object_id).isdigit():
            return None
        ret = self.get_queryset(request).filter(pk=object_id).first()
        code = request.GET.get("code") or request.POST.get("code")
        if ret is None and code:
            by_code = desk_return_by_code(text=code, user=request.user)
            ret = by_code if by_code is not None and str(by_code.pk) == str(object_id) else None
        return ret

    def change_view(self, request, object_id, form_url="", extra_context=None):
        ret = self.get_object(request, object_id)
        if ret is None or not self.has_view_permission(request, ret):
            # Another store's return without its code, or no such return: back to the desk.
            self.message_user(
                request, "No such return at your desk (ask for the return's code).", messages.WARNING
            )
            return HttpResponseRedirect(reverse("admin:returns_deskreturn_changelist"))
        if request.method == "POST":
            return self._step(request, ret)
        stores = list(desk_stores(user=request.user))
        here = next((s for s in stores if s.pk == ret.expected_location_id), stores[0] if stores else None)
        card = return_card(ret)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Return {ret.number}",
            "ret": ret,
            "order": ret.order,
            "card": card,
            "notes": sorted([*card.notes, *card.order_notes], key=lambda n: n.created_at),
            "contact_phone": display_phone(ret.order.contact_phone),
            "conditions": ReturnCondition.choices,
            "stores": stores,
            "here": here,
            "store_timezone": store_zone(here) if here else timezone.get_current_timezone(),
            "can_receive": ret.status == ReturnStatus.REQUESTED and here is not None,
            "can_cancel": ret.status == ReturnStatus.REQUESTED,
            "code": request.GET.get("code", ""),
            "queue_url": reverse("admin:returns_deskreturn_changelist"),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/returns/deskreturn/card.html", context)

    def _step(self, request, ret):
        step = request.POST.get("step", "")
        url = self._card_url(ret, code=request.POST.get("code", ""))
        try:
            if step == "receive":
                ret = return_receive(
                    number=ret.number,
                    location=request.POST.get("store", ""),
                    lines=self._received(request.POST, ret),
                    user=request.user,
                    channel=CHANNEL,
                )
                done = "Received: the refund is recorded, resellable items are back on the shelf." + (
                    f" Exchange: {ret.amount_due} {ret.currency} to charge the customer."
                    if ret.amount_due
                    else ""
                )
            elif step == "cancel":
                return_cancel(
                    number=ret.number,
                    reason=request.POST.get("reason", ""),
                    user=request.user,
                    channel=CHANNEL,
                )
                done = "Return cancelled."
            elif step == "note":
                return_note_add(
                    number=ret.number,
                    text=request.POST.get("text", ""),
                    channel=NoteChannel.STORE,
                    user=request.user,
                )
                done = "Note added."
            else:
                raise InvalidInput("That button is not available here.")
        except DomainError as e:
            self.message_user(request, e.message, messages.ERROR)
        else:
            self.message_user(request, done, messages.SUCCESS)
        return HttpResponseRedirect(url)

    def _received(self, post, ret) -> list[ReceiveLineIn]:
        received = []
        for ln in ret.lines.select_related("sku").order_by("pk"):
            quantity = _count(post.get(f"qty_{ln.sku.code}", ""), what=ln.sku.code)
            if quantity:
                # The "exchange for" box, prefilled with what the customer asked: kept, an exchange;
                # changed, another SKU; emptied, a refund. Absent (an older form): what was asked.
                wanted = post.get(f"exchange_{ln.sku.code}")
                received.append(
                    ReceiveLineIn(
                        sku=ln.sku.code,
                        quantity=quantity,
                        condition=post.get(f"condition_{ln.sku.code}", ""),
                        exchange_for=None if wanted is None else wanted.strip(),
                    )
                )
        if not received:
            raise InvalidInput("Nothing received: give a quantity for at least one line.")
        return received
