"""Admin pages: the outbox (what failed, why, resend), subscriptions, restocks, webhooks.

Rows are read-only here: every button calls a service (notification_resend, webhook_resume).
"""

import json

from django.contrib import admin, messages
from django.utils.html import format_html

from config.contacts import normalise_phone
from config.errors import InvalidInput

from . import services
from .models import (
    BackInStockSubscription,
    Notification,
    NotificationStatus,
    RestockAlert,
    WebhookEndpoint,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.action(description="Resend (failed or stuck pending)")
def resend(modeladmin, request, queryset):
    n = services.notification_resend(notification_ids=list(queryset.values_list("id", flat=True)))
    skipped = queryset.count() - n
    modeladmin.message_user(request, f"{n} notification(s) queued again.", messages.SUCCESS)
    if skipped > 0:
        modeladmin.message_user(
            request, f"{skipped} already sent or being sent: left alone.", messages.WARNING
        )


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "event",
        "channel",
        "recipient",
        "status_badge",
        "attempts",
        "next_attempt_at",
        "short_error",
    )
    list_filter = ("status", "channel", "event", "language")
    search_fields = ("recipient", "dedupe_key", "order__number", "webhook_event")
    list_select_related = ("order",)
    date_hierarchy = "created_at"
    actions = [resend]
    # The context shown without the pickup code: staff never read one (docs/security.md).
    exclude = ("context",)
    readonly_fields = ["context_shown" if f.name == "context" else f.name for f in Notification._meta.fields]

    @admin.display(description="Context")
    def context_shown(self, obj):
        context = dict(obj.context or {})
        if context.get("pickup_code"):
            context["pickup_code"] = "(hidden)"
        return json.dumps(context, ensure_ascii=False, sort_keys=True, default=str)

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        colour = {
            NotificationStatus.FAILED: "#ba2121",
            NotificationStatus.SENT: "#447e36",
            NotificationStatus.SENDING: "#a87b00",
        }.get(obj.status, "#555")
        return format_html('<b style="color:{}">{}</b>', colour, obj.get_status_display())

    @admin.display(description="Last error")
    def short_error(self, obj):
        return (obj.last_error[:80] + "...") if len(obj.last_error) > 80 else obj.last_error


@admin.register(BackInStockSubscription)
class BackInStockSubscriptionAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "sku",
        "location",
        "email",
        "phone",
        "language",
        "status",
        "created_at",
        "notified_at",
    )
    list_filter = ("status", "language", "location")
    search_fields = ("email", "phone", "sku__code")
    list_select_related = ("sku", "location")
    readonly_fields = [f.name for f in BackInStockSubscription._meta.fields]

    def get_search_results(self, request, queryset, search_term):
        """A phone number as it is written on paper ("090-1234-5678") finds its E.164 subscription."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            phone = normalise_phone(search_term)
        except InvalidInput:
            phone = None
        if phone:
            results |= queryset.filter(phone=phone)
        return results, may_have_duplicates


@admin.register(RestockAlert)
class RestockAlertAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "sku",
        "location",
        "available",
        "kind",
        "status",
        "wave",
        "alerted",
        "next_wave_at",
    )
    list_filter = ("status", "kind")
    search_fields = ("sku__code",)
    list_select_related = ("sku", "location")
    readonly_fields = [f.name for f in RestockAlert._meta.fields]


class DeliveryInline(admin.TabularInline):
    model = Notification
    fk_name = "webhook_endpoint"
    fields = ("id", "created_at", "webhook_event", "status", "attempts", "next_attempt_at", "last_error")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ("-id",)
    show_change_link = True
    verbose_name_plural = "Deliveries (newest first)"

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-id")


@admin.action(description="Resume (reset the failure count)")
def resume(modeladmin, request, queryset):
    n = services.webhook_resume(endpoint_ids=list(queryset.values_list("id", flat=True)))
    modeladmin.message_user(request, f"{n} endpoint(s) resumed.", messages.SUCCESS)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    list_display = ("id", "url", "owner", "status", "consecutive_failures", "is_deleted", "created_at")
    list_filter = ("status", "is_deleted")
    search_fields = ("url",)
    exclude = ("secret",)
    readonly_fields = (
        "owner",
        "url",
        "events",
        "status",
        "consecutive_failures",
        "paused_at",
        "is_deleted",
        "created_at",
    )
    inlines = [DeliveryInline]
    actions = [resume]
