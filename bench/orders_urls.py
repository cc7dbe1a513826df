"""URLs for `python -m bench.orders`: the whole app (config.urls) plus the framework-floor view.

Served with ROOT_URLCONF=bench.orders_urls (config/settings/base.py reads it from the environment).
"""

from django.urls import path

from config.urls import urlpatterns as app_urlpatterns

from .orders import FLOOR_PATH, floor_view

urlpatterns = [path(FLOOR_PATH.strip("/") + "/", floor_view(), name="bench-orders-floor"), *app_urlpatterns]
