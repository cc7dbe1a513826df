from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from inventory.hooks import on_out_of_stock, on_restock
        from orders.hooks import on_order_events

        from . import listeners

        on_order_events(listeners.order_events)
        on_restock(listeners.restocks)
        on_out_of_stock(listeners.out_of_stock)
