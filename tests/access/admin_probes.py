"""One probe per row of the Admin table: the pages a role opens (or the form it saves) for an
object of a side, and how to tell it was let through.

"view app/model": the change list (the own object listed; another location's not) and the
object's page (own: 200; other: 403, 404 or a redirect to the list, the index or the login).
"change app/model": saving the object's page (or, for stock levels, the stock form the page
offers): allowed changes the row, refused leaves it as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from django.apps import apps
from django.contrib.admin.utils import quote
from django.urls import reverse

from inventory.models import Sku, StockLevel
from orders.models import Pickup
from returns.models import DeskReturn
from stores.models import Location

from .api_probes import _fulfillment, _loc_key, _prefer, _step_fulfillment, _transfer
from .world import World


@dataclass
class AdminView:
    model: type
    obj: object


@dataclass
class AdminChange:
    obj: object
    url: str
    data: dict
    changed: Callable[[], bool]  # has the row changed?
    row: Callable[[], object]  # the row's values, for "nothing changed"


def _target(w: World, label: str, role: str, side: str):
    """The object a role opens: the one at its location (own) or elsewhere (other). Models with no
    location or owner (admin-only pages): any row of the model (the world makes one of each)."""
    loc = w.loc_for(role, side, _prefer(role))
    targets = {
        "stores.location": lambda: loc,
        "stores.pickuppoint": lambda: w.lockers["S1" if side == "own" else "S2"],
        "inventory.sku": lambda: w.sku,
        "inventory.stocklevel": lambda: w.admin_objects["stocklevel"][_loc_key(w, loc)],
        "inventory.stockmovement": lambda: w.movements[_loc_key(w, loc)],
        "inventory.transfer": lambda: _transfer(w, role, side),
        "orders.fulfillment": lambda: _fulfillment(w, role, side),
        "orders.pickup": lambda: _pickup(w, role, side),
        "orders.order": lambda: w.order_for(role, side),
        "orders.customer": lambda: w.customers[side],
        "returns.refund": lambda: w.refunds[_loc_key(w, loc)],
        "returns.return": lambda: w.returns[_loc_key(w, loc)],
        "returns.deskreturn": lambda: DeskReturn.objects.get(pk=w.returns[_loc_key(w, loc)].pk),
        "notifications.notification": lambda: w.admin_objects["notification"],
        "notifications.backinstocksubscription": lambda: w.admin_objects["backinstocksubscription"],
        "notifications.restockalert": lambda: w.admin_objects["restockalert"],
        "notifications.webhookendpoint": lambda: w.admin_objects["webhookendpoint"],
        "auth.user": lambda: w.admin_objects["user"],
        "knox.authtoken": lambda: w.admin_objects["authtoken"],
    }
    if label in targets:
        return targets[label]()
    model = apps.get_model(label)
    obj = model._default_manager.order_by("pk").first()
    assert obj is not None, f"the world has no {label} to open"
    return obj


def _pickup(w: World, role: str, side: str) -> Pickup:
    """A curbside order to pick at the role's (other) store; at a warehouse, a ship fulfillment (the
    Pickups page lists neither)."""
    f, _ = _step_fulfillment(w, role, side, method="any", state="pending")
    return Pickup.objects.get(pk=f.pk)


def changelist_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_changelist")


def change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[quote(obj.pk)])


def view_probe(w: World, label: str, role: str, side: str) -> AdminView:
    obj = _target(w, label, role, side)
    return AdminView(type(obj), obj)


def _form_values(obj, fields) -> dict:
    data = {}
    for name in fields:
        value = getattr(obj, name)
        if isinstance(value, (dict, list)):
            value = json.dumps(value)
        data[name] = "" if value is None else value
    return data


LOCATION_FIELDS = (
    "code",
    "name",
    "kind",
    "is_active",
    "address",
    "city",
    "postal_code",
    "country",
    "phone",
    "latitude",
    "longitude",
    "timezone",
    "opening_hours",
    "pickup_window_days",
    "pickup_reminder_days",
    "ship_to_store",
    "transit_days",
    "ships_orders",
    "offers_pickup",
    "accepts_returns",
    "fulfillment_priority",
    "daily_capacity",
)
SKU_FIELDS = (
    "code",
    "name",
    "barcode",
    "category",
    "attributes",
    "returnable",
    "is_active",
    "low_stock_threshold",
)


def change_probe(w: World, label: str, role: str, side: str) -> AdminChange:
    obj = _target(w, label, role, side)
    if label in ("stores.location", "inventory.sku"):
        model, fields = (Location, LOCATION_FIELDS) if label == "stores.location" else (Sku, SKU_FIELDS)
        data = {**_form_values(obj, fields), "name": "Renamed in the matrix", "_save": "Save"}
        return AdminChange(
            obj=obj,
            url=change_url(obj),
            data=data,
            changed=lambda: model.objects.get(pk=obj.pk).name == "Renamed in the matrix",
            row=lambda: model.objects.filter(pk=obj.pk).values().get(),
        )
    if label == "stores.pickuppoint":
        from stores.models import Compartment, PickupPoint

        comps = list(Compartment.objects.filter(pickup_point=obj).order_by("pk"))
        data = {
            "name": "Renamed in the matrix",
            "directions": obj.directions,
            "is_active": "on" if obj.is_active else "",
            "code": obj.code,
            "store": obj.store_id,
            "kind": obj.kind,
            "compartments-TOTAL_FORMS": len(comps),
            "compartments-INITIAL_FORMS": len(comps),
            "compartments-MIN_NUM_FORMS": 0,
            "compartments-MAX_NUM_FORMS": 1000,
            "_save": "Save",
        }
        for i, c in enumerate(comps):
            data |= {
                f"compartments-{i}-id": c.pk,
                f"compartments-{i}-pickup_point": obj.pk,
                f"compartments-{i}-label": c.label,
                f"compartments-{i}-size": c.size,
                f"compartments-{i}-is_active": "on" if c.is_active else "",
            }
        return AdminChange(
            obj=obj,
            url=change_url(obj),
            data=data,
            changed=lambda: PickupPoint.objects.get(pk=obj.pk).name == "Renamed in the matrix",
            row=lambda: PickupPoint.objects.filter(pk=obj.pk).values().get(),
        )
    if label == "inventory.stocklevel":
        before = StockLevel.objects.get(pk=obj.pk).on_hand
        return AdminChange(
            obj=obj,
            url=reverse("admin:inventory_stocklevel_change_stock", args=[obj.pk]),
            data={"operation": "receive", "quantity": 1, "reason": "matrix", "reference": "matrix"},
            changed=lambda: StockLevel.objects.get(pk=obj.pk).on_hand == before + 1,
            row=lambda: StockLevel.objects.filter(pk=obj.pk).values().get(),
        )
    if label == "returns.deskreturn":  # the card's "Receive and refund": every line, resellable
        lines = list(obj.lines.select_related("sku"))
        data = {"step": "receive", "store": obj.expected_location.code}
        for ln in lines:
            data |= {f"qty_{ln.sku.code}": ln.quantity, f"condition_{ln.sku.code}": "resellable"}
        return AdminChange(
            obj=obj,
            url=change_url(obj),
            data=data,
            changed=lambda: DeskReturn.objects.get(pk=obj.pk).status == "received",
            row=lambda: DeskReturn.objects.filter(pk=obj.pk).values().get(),
        )
    if label == "orders.pickup":  # the card's "Start picking" button
        return AdminChange(
            obj=obj,
            url=change_url(obj),
            data={"step": "start"},
            changed=lambda: Pickup.objects.get(pk=obj.pk).status == "picking",
            row=lambda: Pickup.objects.filter(pk=obj.pk).values().get(),
        )
    raise AssertionError(f"no change probe for {label}: add one to tests/access/admin_probes.py")
