"""The access policy of docs/security.md, read from its two tables (API and Admin).

    rows = api_rows()      # [Row(kind="api", request="GET /orders/{number}/", cells={"storefront": "served", ...})]
    rows = admin_rows()    # [Row(kind="admin", request="view orders/order", ...)]

The doc is the source of truth: the matrix is generated from these rows, and the coverage guard
checks every API route and every registered ModelAdmin has one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"

ROLES = ("storefront", "associate", "warehouse", "manager", "network manager", "admin", "locker")
CELLS = {"all", "own", "served", "owner", "-"}
# Cells about an object's location or owner: one case with the user's own object, one with another's.
SIDED = {"own", "served", "owner"}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class Row:
    kind: str  # "api" or "admin"
    request: str  # "GET /orders/{number}/" or "view orders/order"
    cells: dict  # role -> cell

    @property
    def method(self) -> str:
        return self.request.split(" ", 1)[0]

    @property
    def path(self) -> str:
        return self.request.split(" ", 1)[1]

    @property
    def shape(self) -> tuple[str, str]:
        """(method, path with every {param} as {}): what the coverage guard matches a route on."""
        return self.method, normalise_path(self.path)


def normalise_path(path: str) -> str:
    return re.sub(r"\{[^}]*\}|<[^>]*>", "{}", path)


def _section(text: str, heading: str) -> str:
    """The text under a `## heading` line (up to the next `## `)."""
    m = re.search(rf"^## {re.escape(heading)}[^\n]*\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    if not m:
        raise AssertionError(f"docs/security.md has no '## {heading}' section")
    return m.group(1)


def _table(section: str, kind: str) -> list[Row]:
    lines = [ln.strip() for ln in section.splitlines() if ln.strip().startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert tuple(header[1:]) == ROLES, f"{kind} table columns {header[1:]} are not the roles {ROLES}"
    rows = []
    for ln in lines[2:]:  # after the header and the |---| line
        cols = [c.strip() for c in ln.strip("|").split("|")]
        assert len(cols) == len(header), f"malformed row: {ln}"
        request, cells = cols[0], dict(zip(ROLES, cols[1:], strict=True))
        bad = {c for c in cells.values() if c not in CELLS}
        assert not bad, f"{request}: unknown cell(s) {bad}"
        if kind == "api":
            assert request.split(" ", 1)[0] in METHODS, f"not a request: {request}"
        else:
            assert re.fullmatch(r"(view|change) \w+/\w+", request), f"not an admin page: {request}"
        rows.append(Row(kind, request, cells))
    assert rows, f"the {kind} table is empty"
    return rows


@cache
def _text() -> str:
    return DOC.read_text(encoding="utf-8")


@cache
def api_rows() -> tuple[Row, ...]:
    return tuple(_table(_section(_text(), "API"), "api"))


@cache
def admin_rows() -> tuple[Row, ...]:
    return tuple(_table(_section(_text(), "Admin"), "admin"))


@cache
def api_documented_outside_table() -> frozenset[tuple[str, str]]:
    """Requests the API section names in its prose, e.g. "`DELETE /back-in-stock/{token}/` needs no
    account": documented (public), so the coverage guard does not ask for a row."""
    prose = "\n".join(ln for ln in _section(_text(), "API").splitlines() if not ln.strip().startswith("|"))
    found = re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s]*)`", prose)
    return frozenset((m, normalise_path(p)) for m, p in found)
