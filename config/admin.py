"""The admin's login form: failed logins are counted per username and client address.

After OMS["ADMIN_LOGIN_FAILURE_LIMIT"] failures in a window of OMS["ADMIN_LOGIN_FAILURE_WINDOW_SECONDS"]
(config.auth_failures, the shared cache), that username from that address is refused, even with the
right password, until the window ends; other usernames and other addresses are not affected. A
successful login clears its counter. Installed on the admin site in config/urls.py.
"""

from __future__ import annotations

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
