from django.apps import AppConfig


class StoresConfig(AppConfig):
    name = "stores"
    verbose_name = "Stores and warehouses"

    def ready(self) -> None:
        # Tokens, users and roles change here (services, admin, manage.py) and in every process:
        # the API token cache must hear of it wherever the change is made.
        from config.api.authentication import connect_auth_cache_invalidation

        connect_auth_cache_invalidation()
