"""Helpers of .ci/schemathesis (standard library + httpx, both installed with the project).

    python .ci/schemathesis.py prepare BASE_URL CONFIG.toml   (tokens in $STOREFRONT_TOKEN, $STAFF_TOKEN)
    python .ci/schemathesis.py summary LABEL REPORT_DIR EXIT_CODE

`prepare` makes the run reach the API's logic, not only its 404s: through the API it places a
ship, a pickup and a curbside order, opens a checkout hold, subscribes to a back-in-stock alert,
registers a webhook and sends a transfer, then writes a schemathesis config whose dictionaries
bind the demo's SKU and location codes and these objects' identifiers to the parameters that name
them. Each binding is used for half of the generated values; schemathesis generates the rest.

`summary` prints operations, requests and failures of one run from its reports and exits 1 when
the run failed, found a failure or an error, or did not test every operation.
"""

from __future__ import annotations

import collections
import glob
import json
import os
import sys
import uuid

import httpx

API = "/api/v1"


def _client(base_url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base_url + API, headers={"Authorization": f"Token {token}"}, timeout=30)


def _ok(response: httpx.Response) -> dict:
    if response.status_code >= 300:
        raise SystemExit(
            f"prepare: {response.request.method} {response.request.url} -> {response.status_code} {response.text}"
        )
    return response.json() if response.content else {}


def prepare(base_url: str, config_path: str) -> None:
    shop = _client(base_url, os.environ["STOREFRONT_TOKEN"])
    staff = _client(base_url, os.environ["STAFF_TOKEN"])

    skus = [s["code"] for s in _ok(shop.get("/skus/", params={"page_size": 200}))["results"]]
    locations = [loc["code"] for loc in _ok(shop.get("/locations/", params={"page_size": 200}))["results"]]
    stores = [c for c in locations if c.startswith(("TKY-", "YOK-", "SAI-"))]
    warehouses = [c for c in locations if c.startswith("WH-")]
    in_stock = [
        s["sku"]
        for s in _ok(
            shop.get(f"/locations/{stores[0]}/stock/", params={"in_stock": "true", "page_size": 200})
        )["results"]
        if s["available"] >= 3
    ]

    def order(method: str, sku: str, **fulfillment) -> dict:
        body = {
            "channel": "web",
            "customer": {"email": f"schema-{method}@example.com", "phone": "090-1234-5678", "name": "Schema"},
            "fulfillment": {"method": method, **fulfillment},
            "lines": [{"sku": sku, "quantity": 1, "unit_price": "1980"}],
            "currency": "JPY",
        }
        return _ok(shop.post("/orders/", json=body, headers={"Idempotency-Key": str(uuid.uuid4())}))

    tokyo = {"line1": "1-1 Jinnan", "city": "Tokyo", "country": "JP", "latitude": 35.66, "longitude": 139.7}
    orders = [
        order("ship", skus[0], address=tokyo),
        order("pickup", in_stock[0], location=stores[0]),
        order("curbside", in_stock[1], location=stores[0]),
    ]
    hold = _ok(
        shop.post(
            "/holds/",
            json={
                "lines": [{"sku": in_stock[2], "quantity": 1}],
                "fulfillment": {"method": "ship", "address": tokyo},
            },
        )
    )
    subscription = _ok(shop.post("/back-in-stock/", json={"sku": skus[1], "email": "schema@example.com"}))
    # A public IP literal: registration resolves host names, and CI may have no DNS.
    webhook = _ok(
        shop.post("/webhooks/", json={"url": "https://93.184.215.14/oms-hook", "events": ["order.placed"]})
    )
    transfer = _ok(
        staff.post(
            "/stock/transfers/",
            json={
                "from_location": warehouses[0],
                "to_location": stores[0],
                "lines": [{"sku": skus[0], "quantity": 1}],
            },
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
    )

    dictionaries = {
        "skus": skus[:20] + in_stock[:5],
        "locations": locations,
        "orders": [o["number"] for o in orders],
        "fulfillments": [f["id"] for o in orders for f in o["fulfillments"]],
        "customers": sorted({o["customer"]["id"] for o in orders}),
        "holds": [hold["id"]],
        "subscriptions": [subscription["unsubscribe_token"]],
        "webhooks": [webhook["id"]],
        "transfers": [transfer["id"]],
    }
    # Parameter (location.name or body path) -> dictionary, for every operation.
    everywhere = {
        "path.sku": "skus",
        "query.sku": "skus",
        "query.location": "locations",
        "path.number": "orders",
        "path.hold_id": "holds",
        "path.token": "subscriptions",
        "path.transfer_id": "transfers",
        "body.sku": "skus",
        "body.lines[*].sku": "skus",
        "body.location": "locations",
        "body.from_location": "locations",
        "body.to_location": "locations",
        "body.preferred_location": "locations",
        "body.fulfillment.location": "locations",
    }
    # The same name meaning different things: bound per operation.
    per_operation = [
        ("^/api/v1/locations/", {"path.code": "locations"}),
        ("^/api/v1/skus/", {"path.code": "skus"}),
        ("^/api/v1/fulfillments/", {"path.id": "fulfillments"}),
        ("^/api/v1/customers/", {"path.id": "customers"}),
        ("^/api/v1/webhooks/", {"path.id": "webhooks"}),
    ]

    def binding(name: str) -> str:
        return f'{{ dictionary = "{name}", probability = 0.5 }}'

    lines = ["# Written by .ci/schemathesis.py prepare for one run; not kept.", ""]
    for name, values in dictionaries.items():
        lines.append(f"[dictionaries.{name}]")
        lines.append(f"values = {json.dumps(values)}")  # ids stay integers, as their path parameters
        lines.append("")
    lines.append("[parameters]")
    lines += [f'"{key}" = {binding(name)}' for key, name in everywhere.items()]
    for regex, params in per_operation:
        lines += ["", "[[operations]]", f'include-path-regex = "{regex}"', "[operations.parameters]"]
        lines += [f'"{key}" = {binding(name)}' for key, name in params.items()]
    with open(config_path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print(
        f"prepared: {len(orders)} orders ({', '.join(dictionaries['orders'])}), "
        f"{len(dictionaries['fulfillments'])} fulfillments, hold, subscription, webhook, transfer; "
        f"{len(dictionaries['skus'])} SKU and {len(locations)} location codes"
    )


def summary(label: str, report_dir: str, exit_code: str) -> int:
    [report] = glob.glob(os.path.join(report_dir, "json-*.json"))
    with open(report) as fh:
        data = json.load(fh)
    requests = 0
    statuses: collections.Counter[int] = collections.Counter()
    for path in glob.glob(os.path.join(report_dir, "ndjson-*.ndjson")):
        with open(path) as fh:
            for line in fh:
                event = json.loads(line)
                finished = event.get("ScenarioFinished")
                if not finished:
                    continue
                for interaction in finished["recorder"].get("interactions", {}).values():
                    requests += 1
                    response = interaction.get("response") or {}
                    statuses[response.get("status_code", 0)] += 1
    ops = data["operations"]
    failures = sum(f["count"] for f in data["failures"])
    errors = len(data["errors"])
    by_status = ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items()))
    print(
        f"{label}: {ops['tested']} of {ops['selected']} operations tested, {requests} requests, "
        f"{failures} failures, {errors} errors ({data['running_time']:.0f}s; responses {by_status})"
    )
    for failure in data["failures"]:
        print(
            f"  {failure['code']} {failure['title']}: {failure['count']} in {', '.join(failure['operations'])}"
        )
    for error in data["errors"]:
        print(f"  error: {json.dumps(error)[:300]}")
    failed = (
        exit_code != "0" or failures or errors or ops["tested"] != ops["selected"] or not data.get("complete")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "prepare":
        prepare(*args)
    elif command == "summary":
        sys.exit(summary(*args))
    else:
        raise SystemExit(__doc__)
