"""Load the demo network: 2 warehouses and 9 stores around Tokyo, 200 SKUs, stock, users.

Idempotent: what exists is left as it is (a second run creates nothing and moves no stock);
each run prints the admin login and a NEW API token for the storefront account.
Stock is put in place only through inventory.services (stock_import, stock_set_safety_stock),
so the ledger agrees with every stock level (`manage.py inventory_audit`).
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import time

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand
from django.db import transaction

from inventory.models import Sku, StockLevel
from inventory.services import ImportRow, stock_import, stock_set_safety_stock
from stores.models import (
    Compartment,
    CompartmentSize,
    Location,
    LocationKind,
    PickupPoint,
    PickupPointKind,
    Role,
)
from stores.services import api_token_create, api_user_upsert, role_groups_sync

from ._demo_day import demo_day
from ._demo_returns import demo_returns

DEFAULT_ADMIN_PASSWORD = "oms-demo-admin"  # documented demo default; DEMO_ADMIN_PASSWORD overrides
DEFAULT_STAFF_PASSWORD = "oms-demo-staff"  # documented demo default; DEMO_STAFF_PASSWORD overrides
SEED = 20260401

_STORE_HOURS = {d: ["10:00", "21:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
_MALL_HOURS = {
    **{d: ["11:00", "21:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
    "sat": ["10:00", "21:00"],
    "sun": ["10:00", "20:00"],
}
_WAREHOUSE_HOURS = {
    **{d: ["08:00", "22:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat")},
    "sun": None,
}

# code, name, address, city, postal code, lat, lng, ships, priority, daily capacity, hours, active
WAREHOUSES = [
    (
        "WH-KAWASAKI",
        "Kawasaki Distribution Center",
        "1-3 Higashi-Ogishima, Kawasaki-ku",
        "Kawasaki",
        "210-0869",
        35.4913,
        139.7530,
        True,
        10,
        0,
        _WAREHOUSE_HOURS,
        True,
    ),
    (
        "WH-ICHIKAWA",
        "Ichikawa Distribution Center",
        "2-1 Shiohama, Ichikawa-shi, Chiba",
        "Ichikawa",
        "272-0127",
        35.6689,
        139.9300,
        True,
        20,
        0,
        _WAREHOUSE_HOURS,
        True,
    ),
]
# (code, store, name, directions, compartments)
DEMO_LOCKER = ("SBY-L1", "TKY-SHIBUYA", "Shibuya locker", "Ground floor, by the Jinnan entrance", 12)
STORES = [
    (
        "TKY-SHIBUYA",
        "Shibuya",
        "1-21-3 Jinnan, Shibuya-ku",
        "Tokyo",
        "150-0041",
        35.6617,
        139.6995,
        True,
        50,
        60,
        _STORE_HOURS,
        True,
    ),
    (
        "TKY-SHINJUKU",
        "Shinjuku",
        "3-38-1 Shinjuku, Shinjuku-ku",
        "Tokyo",
        "160-0022",
        35.6906,
        139.7003,
        True,
        50,
        80,
        _STORE_HOURS,
        True,
    ),
    (
        "TKY-GINZA",
        "Ginza",
        "4-6-16 Ginza, Chuo-ku",
        "Tokyo",
        "104-0061",
        35.6718,
        139.7650,
        False,
        60,
        40,
        _MALL_HOURS,
        True,
    ),
    (
        "TKY-IKEBUKURO",
        "Ikebukuro",
        "1-28-1 Minami-Ikebukuro, Toshima-ku",
        "Tokyo",
        "171-0022",
        35.7289,
        139.7116,
        True,
        60,
        50,
        _STORE_HOURS,
        True,
    ),
    (
        "TKY-UENO",
        "Ueno",
        "6-15-1 Ueno, Taito-ku",
        "Tokyo",
        "110-0005",
        35.7119,
        139.7745,
        False,
        70,
        30,
        _STORE_HOURS,
        True,
    ),
    (
        "TKY-KICHIJOJI",
        "Kichijoji",
        "1-1-1 Kichijoji Minamicho, Musashino-shi",
        "Musashino",
        "180-0003",
        35.7030,
        139.5797,
        False,
        70,
        30,
        _MALL_HOURS,
        True,
    ),
    (
        "YOK-MINATOMIRAI",
        "Yokohama Minatomirai",
        "2-2-1 Minatomirai, Nishi-ku, Yokohama",
        "Yokohama",
        "220-0012",
        35.4555,
        139.6320,
        True,
        60,
        60,
        _MALL_HOURS,
        True,
    ),
    (
        "SAI-OMIYA",
        "Omiya",
        "1-6-2 Nishiki-cho, Omiya-ku, Saitama",
        "Saitama",
        "330-0853",
        35.9063,
        139.6237,
        False,
        80,
        30,
        _STORE_HOURS,
        True,
    ),
    # Closed for refurbishment: its stock is shown with ?explain=true, reason "inactive".
    (
        "TKY-TACHIKAWA",
        "Tachikawa",
        "2-1-1 Akebonocho, Tachikawa-shi",
        "Tachikawa",
        "190-0012",
        35.6987,
        139.4138,
        False,
        90,
        20,
        _STORE_HOURS,
        False,
    ),
]

# category, code prefix, product names, variant attribute name, variants, colours
CATALOG = [
    (
        "apparel",
        "TEE",
        ["Cotton crew tee", "Linen shirt", "Fleece hoodie", "Selvedge jeans", "Down jacket"],
        "size",
        ["S", "M", "L", "XL"],
        ["BLK", "WHT", "NVY"],
    ),
    (
        "footwear",
        "SHO",
        ["Canvas sneaker", "Leather loafer", "Trail runner", "Rain boot"],
        "size",
        ["24", "25", "26", "27", "28"],
        ["BLK", "BRN"],
    ),
    (
        "accessories",
        "ACC",
        [
            "Tote bag",
            "Wool scarf",
            "Leather belt",
            "Bucket hat",
            "Card case",
            "Umbrella",
            "Canvas cap",
            "Wallet",
        ],
        "color",
        ["BLK", "BRN", "NVY", "GRY", "RED"],
        [""],
    ),
    (
        "home",
        "HOM",
        [
            "Ceramic mug",
            "Linen towel",
            "Aroma diffuser",
            "Cotton blanket",
            "Glass tumbler",
            "Bamboo tray",
            "Cushion cover",
            "Tea pot",
        ],
        "color",
        ["WHT", "GRY", "BLU", "GRN", "BEI"],
        [""],
    ),
    (
        "beauty",
        "BTY",
        [
            "Hand cream",
            "Lip balm",
            "Face mist",
            "Body soap",
            "Shampoo",
            "Conditioner",
            "Body lotion",
            "Cleansing oil",
        ],
        "volume",
        ["30ml", "100ml", "250ml"],
        [""],
    ),
]
SKU_COUNT = 200
COLOUR_NAMES = {
    "BLK": "black",
    "WHT": "white",
    "NVY": "navy",
    "BRN": "brown",
    "GRY": "grey",
    "RED": "red",
    "BLU": "blue",
    "GRN": "green",
    "BEI": "beige",
}


def _jan13(n: int) -> str:
    """A valid JAN/EAN-13 in the Japanese 45/49 range."""
    body = f"4901234{n:05d}"
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def demo_skus() -> list[dict]:
    out: list[dict] = []
    for category, prefix, names, attr, variants, colours in CATALOG:
        for p, name in enumerate(names):
            for colour in colours:
                for variant in variants:
                    code = "-".join(x for x in (prefix, f"{p + 1:02d}", colour, variant.upper()) if x)
                    attrs = {attr: variant}
                    if colour:
                        attrs["color"] = colour
                    words = [COLOUR_NAMES.get(colour, ""), COLOUR_NAMES.get(variant, variant)]
                    label = f"{name}, {' '.join(w for w in words if w)}"
                    out.append({"code": code, "name": label, "category": category, "attributes": attrs})
    # Enough variants are generated above; take a fixed 200, spread over every category.
    by_cat: dict[str, list[dict]] = {}
    for s in out:
        by_cat.setdefault(s["category"], []).append(s)
    chosen: list[dict] = []
    while len(chosen) < SKU_COUNT and any(by_cat.values()):
        for cat in by_cat.values():
            if cat and len(chosen) < SKU_COUNT:
                chosen.append(cat.pop(0))
    chosen.sort(key=lambda s: s["code"])
    for i, s in enumerate(chosen):
        s["barcode"] = _jan13(i + 1)
        s["returnable"] = s["category"] != "beauty"  # opened cosmetics are not taken back
    return chosen


def demo_stock(
    skus: list[str], locations: list[Location]
) -> tuple[list[tuple[str, str, int]], list[tuple[str, str, int]]]:
    """Deterministic stock: (location, sku, quantity) rows and (location, sku, safety stock) rows."""
    rng = random.Random(SEED)
    rows, safety = [], []
    # Some SKUs are sold out everywhere (a few per category, so every demo shopper meets one).
    sold_out = set(skus[7::25])
    for sku in skus:
        popularity = rng.choice([0.3, 0.6, 1.0, 1.5])
        for loc in locations:
            if sku in sold_out:
                qty = 0
            elif loc.kind == LocationKind.WAREHOUSE:
                qty = 0 if rng.random() < 0.08 else int(rng.randint(20, 300) * popularity)
            else:
                qty = 0 if rng.random() < 0.25 else max(1, int(rng.randint(1, 15) * popularity))
            rows.append((loc.code, sku, qty))
            if loc.kind == LocationKind.WAREHOUSE and qty and rng.random() < 0.3:
                safety.append((loc.code, sku, rng.randint(2, 5)))
            elif loc.kind == LocationKind.STORE and qty > 3 and rng.random() < 0.1:
                safety.append((loc.code, sku, 1))
    return rows, safety


DEMO_STAFF = [
    ("manager", Role.MANAGER, None),  # network-wide: every location
    ("assoc-shibuya", Role.ASSOCIATE, ["TKY-SHIBUYA"]),
    ("assoc-shinjuku", Role.ASSOCIATE, ["TKY-SHINJUKU"]),
    ("assoc-ginza", Role.ASSOCIATE, ["TKY-GINZA", "TKY-UENO"]),
    ("wh-kawasaki", Role.WAREHOUSE, ["WH-KAWASAKI"]),
    ("wh-ichikawa", Role.WAREHOUSE, ["WH-ICHIKAWA"]),
]
DEMO_PICTURES = {
    "apparel": "tee",
    "accessories": "bag",
    "beauty": "bottle",
    "footwear": "shoe",
    "home": "mug",
}


class Command(BaseCommand):
    help = "Load the demo network (idempotent) and print the admin login and a new storefront API token."

    def add_arguments(self, parser):
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="where the server will listen (for the printout)",
        )

    def handle(self, *args, base_url: str, **options):
        started = time.monotonic()
        admin_password = os.environ.get("DEMO_ADMIN_PASSWORD") or DEFAULT_ADMIN_PASSWORD
        staff_password = os.environ.get("DEMO_STAFF_PASSWORD") or DEFAULT_STAFF_PASSWORD
        with transaction.atomic():
            n_loc = self._locations()
            n_sku = self._skus()
            self._lockers()
        n_rows, n_safety = self._stock()
        users = self._users(admin_password, staff_password)
        pictures = self._pictures()
        # The day's customer messages go out as they would (in-process on the embedded default);
        # the console email backend would print each one here, above the login details.
        with contextlib.redirect_stdout(io.StringIO()):
            day = demo_day(associate_for=self._associate_for)
            returns = demo_returns(
                skus=list(
                    Sku.objects.filter(returnable=True, is_active=True, code__in=self._warehouse_skus())
                    .order_by("code")
                    .values_list("code", "category")
                )
            )
        token = api_token_create(get_user_model().objects.get(username="storefront"))
        elapsed = time.monotonic() - started

        base_url = base_url.rstrip("/")
        w = self.stdout.write
        w(
            f"Demo network: {Location.objects.count()} locations ({n_loc} new), {Sku.objects.count()} SKUs "
            f"({n_sku} new), {StockLevel.objects.count()} stock levels ({n_rows} new, {n_safety} safety stocks) "
            f"in {elapsed:.1f}s."
        )
        w(f"A day's work at the stores' counters: {day} pickup orders ({pictures} SKU pictures set).")
        w(f"Returns in progress at the stores' returns desks: {returns}.")
        w("=" * 78)
        w(f"  Admin        {base_url}/admin/")
        w("    username   admin")
        w(f"    password   {admin_password}")
        w(f"  Staff logins (password {staff_password}): {', '.join(users)}")
        w(f"  API docs     {base_url}/api/docs/")
        w("  API token for the storefront account (new on every run):")
        w(f"    {token}")
        w(f'  Try: curl -H "Authorization: Token {token}" {base_url}/api/v1/locations/')
        w(
            f"  Locker bank  {DEMO_LOCKER[0]} at {DEMO_LOCKER[1]}, {DEMO_LOCKER[4]} compartments; its controller:"
        )
        w(
            f"    manage.py create_api_user --username locker-shibuya --role locker --location {DEMO_LOCKER[1]}"
        )
        w("=" * 78)

    def _locations(self) -> int:
        existing = set(Location.objects.values_list("code", flat=True))
        new = []
        for kind, specs in ((LocationKind.WAREHOUSE, WAREHOUSES), (LocationKind.STORE, STORES)):
            for code, name, address, city, postal, lat, lng, ships, prio, cap, hours, active in specs:
                if code in existing:
                    continue
                store = kind == LocationKind.STORE
                new.append(
                    Location(
                        code=code,
                        name=name,
                        kind=kind,
                        address=address,
                        city=city,
                        postal_code=postal,
                        country="JP",
                        latitude=lat,
                        longitude=lng,
                        timezone="Asia/Tokyo",
                        opening_hours=hours,
                        ships_orders=ships,
                        offers_pickup=store,
                        # Short stores accept pickups of what a warehouse sends them (2 days).
                        ship_to_store=store,
                        transit_days=2,
                        accepts_returns=True,  # stores at the desk, warehouses by mail
                        is_active=active,
                        fulfillment_priority=prio,
                        daily_capacity=cap,
                        phone=f"+81-3-5555-{len(existing) + len(new) + 1:04d}",
                    )
                )
        Location.objects.bulk_create(new)
        return len(new)

    def _lockers(self) -> None:
        """A locker bank at one store (docs/orders.md, "Lockers"): 12 compartments A1-C4, the
        bottom row large. Kept as it is when it exists."""
        code, store_code, name, directions, count = DEMO_LOCKER
        store = Location.objects.filter(code=store_code).first()
        if store is None or PickupPoint.objects.filter(code=code).exists():
            return
        locker = PickupPoint.objects.create(
            code=code, store=store, kind=PickupPointKind.LOCKER, name=name, directions=directions
        )
        Compartment.objects.bulk_create(
            Compartment(
                pickup_point=locker,
                label=f"{'ABC'[i // 4]}{i % 4 + 1}",
                size=CompartmentSize.LARGE
                if i >= 8
                else CompartmentSize.SMALL
                if i < 4
                else CompartmentSize.MEDIUM,
            )
            for i in range(count)
        )

    def _skus(self) -> int:
        existing = set(Sku.objects.values_list("code", flat=True))
        taken_barcodes = set(Sku.objects.exclude(barcode=None).values_list("barcode", flat=True))
        new = [
            Sku(
                code=s["code"],
                name=s["name"],
                category=s["category"],
                attributes=s["attributes"],
                barcode=s["barcode"] if s["barcode"] not in taken_barcodes else None,
                returnable=s["returnable"],
                # Fast sellers say "only N left" earlier than the global default.
                low_stock_threshold=5 if s["category"] == "apparel" else None,
            )
            for s in demo_skus()
            if s["code"] not in existing
        ]
        Sku.objects.bulk_create(new)
        return len(new)

    def _stock(self) -> tuple[int, int]:
        """Stock for (location, SKU) pairs that have no stock level yet: one stock_import, so one ledger."""
        codes = [loc[0] for loc in WAREHOUSES + STORES]
        locations = list(Location.objects.filter(code__in=codes).order_by("code"))
        skus = {s.code: s for s in Sku.objects.filter(code__in=[s["code"] for s in demo_skus()])}
        have = set(
            StockLevel.objects.filter(location__in=locations, sku__in=skus.values()).values_list(
                "location__code", "sku__code"
            )
        )
        rows, safety = demo_stock(sorted(skus), locations)
        new_rows = [r for r in rows if (r[0], r[1]) not in have]
        if new_rows:
            stock_import(
                rows=[ImportRow(i + 2, loc, sku, str(q)) for i, (loc, sku, q) in enumerate(new_rows)],
                reference="demo",
                chunk_size=1000,
            )
        by_code = {loc.code: loc for loc in locations}
        new_safety = [s for s in safety if (s[0], s[1]) not in have]
        with transaction.atomic():
            for loc, sku, qty in new_safety:
                stock_set_safety_stock(
                    location=by_code[loc], sku=skus[sku], safety_stock=qty, reason="demo safety stock"
                )
        return len(new_rows), len(new_safety)

    def _pictures(self) -> int:
        """A picture per demo SKU, by category (config/static/demo/skus/), where it has none."""
        n = 0
        for category, picture in DEMO_PICTURES.items():
            n += Sku.objects.filter(category=category, image_url="").update(
                image_url=f"/static/demo/skus/{picture}.svg"
            )
        return n

    def _warehouse_skus(self) -> list[str]:
        """SKUs with at least 20 available in every warehouse (the demo's returns are shipped)."""
        from inventory.selectors import location_stock

        codes = None
        for wh in Location.objects.filter(kind=LocationKind.WAREHOUSE, is_active=True):
            have = {lv.sku.code for lv in location_stock(location=wh) if lv.available >= 20}
            codes = have if codes is None else codes & have
        return sorted(codes or [])

    def _associate_for(self, store: Location):
        """Who works the counter in the demo day: the store's demo associate, else the manager."""
        User = get_user_model()
        username = next((u for u, _, codes in DEMO_STAFF if codes and store.code in codes), "manager")
        return User.objects.get(username=username if username.startswith("assoc-") else "manager")

    def _users(self, admin_password: str, staff_password: str) -> list[str]:
        User = get_user_model()
        role_groups_sync()
        admin = User.objects.filter(username="admin").first()
        if admin is None:
            User.objects.create_superuser("admin", "admin@example.com", admin_password)
        elif not (admin.is_superuser and admin.is_staff and admin.is_active) or not admin.check_password(
            admin_password
        ):
            admin.is_superuser = admin.is_staff = admin.is_active = True
            admin.set_password(admin_password)
            admin.save()

        staff = DEMO_STAFF
        existing = set(
            User.objects.filter(username__in=[s[0] for s in staff]).values_list("username", flat=True)
        )
        # One hash for every new demo staff user: hashing is deliberately slow.
        password_hash = make_password(staff_password) if len(existing) < len(staff) else None
        for username, role, locations in staff:
            if username in existing:
                continue
            api_user_upsert(
                username=username,
                role=role,
                location_codes=locations,
                network_wide=locations is None,
                password_hash=password_hash,
                email=f"{username}@example.com",
            )
        if not User.objects.filter(username="storefront").exists():
            api_user_upsert(username="storefront", role=Role.STOREFRONT, location_codes=[])
        return [s[0] for s in staff]
