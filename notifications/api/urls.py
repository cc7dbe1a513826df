from django.urls import path

from . import views

urlpatterns = [
    path("back-in-stock/", views.BackInStockSubscribeApi.as_view(), name="back-in-stock"),
    path(
        "back-in-stock/<str:token>/",
        views.BackInStockUnsubscribeApi.as_view(),
        name="back-in-stock-unsubscribe",
    ),
    path("webhooks/", views.WebhookListCreateApi.as_view(), name="webhooks"),
    path("webhooks/<int:pk>/", views.WebhookDetailApi.as_view(), name="webhook-detail"),
]
