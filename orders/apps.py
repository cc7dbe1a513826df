from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self) -> None:
        from inventory.hooks import on_transfer_arrival

        from .services.ship_to_store import transfer_arrival

        # Ship to store: a transfer received at a store counts in, reserved, what an order waits for.
        on_transfer_arrival(transfer_arrival)
