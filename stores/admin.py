"""Admin for locations and staff. Non-superusers see only the locations they are assigned to."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .models import Location, StaffAssignment, StaffProfile
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
