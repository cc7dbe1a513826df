"""The admin's login form: failed logins are counted per username and client address.

After OMS["ADMIN_LOGIN_FAILURE_LIMIT"] failures in a window of OMS["ADMIN_LOGIN_FAILURE_WINDOW_SECONDS"]
(config.auth_failures, the shared cache), that username from that address is refused, even with the
right password, until the window ends; other usernames and other addresses are not affected. A
successful login clears its counter. Installed on the admin site in config/urls.py.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from config.auth_failures import admin_login_failures, client_address


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "throttled": "Too many failed logins for this username from your address. Try again in %(minutes)s minute(s).",
    }

    def clean(self):
        failures = admin_login_failures()
        address = client_address(self.request) if self.request is not None else "-"
        subject = f"{(self.cleaned_data.get('username') or '').casefold()}\n{address}"
        wait = failures.locked(subject)
        if wait is not None:
            raise ValidationError(
                self.error_messages["throttled"], code="throttled", params={"minutes": -(-wait // 60)}
            )
        try:
            cleaned = super().clean()
        except ValidationError:
            failures.fail(subject)
            raise
        failures.clear(subject)
        return cleaned


# --- Read-only pages for people at work ------------------------------------------------------
# Rows staff may look at but never edit (orders, refunds, returns): every change goes through a
# service (the API, or a purpose-built page such as the Pickups page or the Returns desk). Who may
# look is `sees(user)`, one rule per app; which rows is each admin's get_queryset.


class ReadOnlyInline(admin.TabularInline):
    """An inline that lists rows and never adds, changes or deletes one."""

    extra = 0
    can_delete = False
    show_change_link = False

    def sees(self, user) -> bool:
        return False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return self.sees(request.user)


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """A model's pages (list and object) for those who `sees`; no add, change or delete."""

    def sees(self, user) -> bool:
        return False

    def has_module_permission(self, request):
        return self.sees(request.user)

    def has_view_permission(self, request, obj=None):
        return self.sees(request.user)

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
