"""Admin for locations, staff and API tokens. Non-superusers see only the locations they are
assigned to; API tokens are for superusers only."""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from knox.models import get_token_model

from config.errors import DomainError

from .models import Compartment, Location, PickupPoint, StaffAssignment, StaffProfile
from .selectors import user_location_ids


class LocationScopedAdmin(admin.ModelAdmin):
    """Scopes a ModelAdmin to the user's assigned locations.

    `location_lookups` are the ORM paths from the model to a Location id; a row is visible
    when any of them is one of the user's locations. Superusers see everything.
    """

    location_lookups: tuple[str, ...] = ("location_id",)

    def scoped_location_ids(self, request) -> set[int] | None:
        return user_location_ids(request.user)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        ids = self.scoped_location_ids(request)
        if ids is None:
            return qs
        from django.db.models import Q

        cond = Q()
        for lookup in self.location_lookups:
            cond |= Q(**{f"{lookup}__in": ids})
        return qs.filter(cond)

    def obj_in_scope(self, request, obj) -> bool:
        ids = self.scoped_location_ids(request)
        if ids is None or obj is None:
            return True
        for lookup in self.location_lookups:
            value = obj
            for part in lookup.split("__"):
                value = getattr(value, part, None)
            if value in ids:
                return True
        return False

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and self.obj_in_scope(request, obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self.obj_in_scope(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self.obj_in_scope(request, obj)


@admin.register(Location)
class LocationAdmin(LocationScopedAdmin):
    location_lookups = ("id",)
    list_display = (
        "code",
        "name",
        "kind",
        "city",
        "ships_orders",
        "offers_pickup",
        "accepts_returns",
        "is_active",
        "fulfillment_priority",
        "daily_capacity",
    )
    list_filter = ("kind", "is_active", "ships_orders", "offers_pickup", "accepts_returns", "city")
    search_fields = ("code", "name", "city", "postal_code")
    ordering = ("code",)
    fieldsets = (
        (None, {"fields": ("code", "name", "kind", "is_active")}),
        (
            "Address",
            {"fields": ("address", "city", "postal_code", "country", "phone", "latitude", "longitude")},
        ),
        ("Hours", {"fields": ("timezone", "opening_hours")}),
        (
            "Capabilities",
            {
                "fields": (
                    "ships_orders",
                    "offers_pickup",
                    "pickup_window_days",
                    "pickup_reminder_days",
                    "ship_to_store",
                    "transit_days",
                    "accepts_returns",
                    "fulfillment_priority",
                    "daily_capacity",
                )
            },
        ),
    )

    def has_add_permission(self, request):
        # New locations are a network decision: superusers only.
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        # Stock, orders and the ledger reference locations; deactivate instead.
        return False


class CompartmentInline(admin.TabularInline):
    model = Compartment
    fields = ("label", "size", "is_active")
    extra = 1
    # Orders point at compartments (PROTECT): a broken door is taken out of service instead.
    can_delete = False


@admin.register(PickupPoint)
class PickupPointAdmin(LocationScopedAdmin):
    """A store's locker banks and their compartments (docs/orders.md, "Lockers"). Managers rename
    them, add compartments and take doors out of service at their stores; associates look; a new
    locker bank (new hardware at a store) is the superusers'. Loading, unloading and what is in
    each compartment: the locker services, GET /api/v1/lockers/ and the Pickups page."""

    location_lookups = ("store_id",)
    inlines = (CompartmentInline,)
    list_display = ("code", "name", "store", "kind", "compartment_count", "is_active")
    list_filter = ("kind", "is_active", "store")
    list_select_related = ("store",)
    search_fields = ("code", "name", "store__code", "store__name")
    ordering = ("code",)
    fields = ("code", "name", "store", "kind", "directions", "is_active")

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).annotate(_compartments=Count("compartments"))

    @admin.display(description="compartments", ordering="_compartments")
    def compartment_count(self, obj):
        return obj._compartments

    def get_readonly_fields(self, request, obj=None):
        # Moving a locker bank to another store, or renaming its code (the controllers' URL), is
        # new hardware: superusers only.
        return () if request.user.is_superuser else ("code", "store", "kind")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "store":
            kwargs["queryset"] = Location.objects.filter(kind="store", offers_pickup=True).order_by("code")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return False  # orders point at its compartments; take it out of service instead


class StaffProfileInline(admin.StackedInline):
    model = StaffProfile
    fields = ("role", "network_wide")
    can_delete = False
    max_num = 1
    verbose_name_plural = "Role"


class StaffAssignmentInline(admin.TabularInline):
    model = StaffAssignment
    extra = 1
    autocomplete_fields = ("location",)
    verbose_name_plural = "Assigned locations"


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    """Users with their role and locations. Roles grant admin rights through the "OMS <role>" groups."""

    inlines = (StaffProfileInline, StaffAssignmentInline)
    list_display = ("username", "email", "role", "locations", "is_staff", "is_active")
    list_filter = (
        "staff_profile__role",
        "staff_profile__network_wide",
        "is_staff",
        "is_active",
        "assignments__location",
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("staff_profile")
            .prefetch_related("assignments__location")
        )

    def save_related(self, request, form, formsets, change):
        """A role set here grants the same admin access as create_api_user: its group and is_staff."""
        from .services import STAFF_ROLES, user_role_groups_sync

        super().save_related(request, form, formsets, change)
        user = form.instance
        profile = StaffProfile.objects.filter(user=user).first()
        role = profile.role if profile else None
        user_role_groups_sync(user, role)
        if role in STAFF_ROLES and not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])

    @admin.display(description="role", ordering="staff_profile__role")
    def role(self, obj):
        profile = getattr(obj, "staff_profile", None)
        return profile.role if profile else "-"

    @admin.display(description="locations")
    def locations(self, obj):
        profile = getattr(obj, "staff_profile", None)
        if profile and profile.network_wide:
            return "every location (network-wide)"
        return ", ".join(a.location.code for a in obj.assignments.all()) or "-"


# --- API tokens ---------------------------------------------------------------------------------

Token = get_token_model()
if admin.site.is_registered(Token):
    admin.site.unregister(Token)  # knox's own: lists digests, lets anyone with the permission in


class TokenCreateForm(forms.ModelForm):
    class Meta:
        model = Token
        fields = ["user", "expiry"]
        help_texts = {"expiry": "Empty: valid until revoked."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "user" in self.fields:  # the add form (a token's own page is read-only)
            self.fields["user"].queryset = User.objects.filter(is_active=True)


@admin.register(Token)
class ApiTokenAdmin(admin.ModelAdmin):
    """API tokens: who holds which, when each was last used; issue one, revoke any. Superusers only.

    Only the key's first characters and its digest are stored: a new token's key is shown once, in
    the message after "Save", and cannot be shown again. Issuing and revoking call stores.services.
    """

    form = TokenCreateForm
    list_display = ("key_prefix", "user", "role", "created", "last_use", "expiry")
    list_select_related = ("user", "user__staff_profile", "usage")
    list_filter = ("user__staff_profile__role", "created", "expiry")
    search_fields = ("token_key", "user__username", "user__email")
    ordering = ("-created",)
    autocomplete_fields = ("user",)
    actions = ["revoke"]

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None):
        return False  # a token is issued or revoked, never edited

    def has_delete_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def get_fields(self, request, obj=None):
        return (
            ("user", "expiry")
            if obj is None
            else ("key_prefix", "user", "role", "created", "last_use", "expiry")
        )

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.get_fields(request, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # "revoke" is the same, through the service
        return actions

    @admin.display(description="key prefix", ordering="token_key")
    def key_prefix(self, obj):
        return f"{obj.token_key}…"

    @admin.display(description="role", ordering="user__staff_profile__role")
    def role(self, obj):
        profile = getattr(obj.user, "staff_profile", None)
        return profile.get_role_display() if profile else "-"

    @admin.display(description="last use", ordering="usage__last_used_at", empty_value="never")
    def last_use(self, obj):
        usage = getattr(obj, "usage", None)
        return usage.last_used_at if usage else None

    def save_form(self, request, form, change):
        from .services import api_token_issue

        issued = api_token_issue(user=form.cleaned_data["user"], expiry=form.cleaned_data.get("expiry"))
        issued.token._issued_key = issued.key
        return issued.token

    def save_model(self, request, obj, form, change):
        pass  # stored by api_token_issue in save_form

    def save_related(self, request, form, formsets, change):
        pass  # a token has no relations to save

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(
            request,
            format_html(
                "API token for {} created. Copy the key now, it is not shown again: <code>{}</code>",
                obj.user.get_username(),
                obj._issued_key,
            ),
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:knox_authtoken_changelist"))

    def delete_model(self, request, obj):
        from .services import api_tokens_revoke

        api_tokens_revoke(tokens=[obj])

    def delete_queryset(self, request, queryset):
        from .services import api_tokens_revoke

        api_tokens_revoke(tokens=queryset)

    @admin.action(description="Revoke the selected API tokens")
    def revoke(self, request, queryset):
        from .services import api_tokens_revoke

        try:
            count = api_tokens_revoke(tokens=queryset)
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(request, f"Revoked {count} API token(s): refused from the next request on.")
