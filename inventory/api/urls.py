from django.urls import path

from . import views

urlpatterns = [
    path("skus/", views.SkuListApi.as_view(), name="sku-list"),
    path("skus/<str:code>/", views.SkuDetailApi.as_view(), name="sku-detail"),
    path("availability/check/", views.AvailabilityCheckApi.as_view(), name="availability-check"),
    path("availability/<str:sku>/", views.AvailabilityApi.as_view(), name="availability"),
    path("stock/receipts/", views.StockReceiptApi.as_view(), name="stock-receipts"),
    path("stock/adjustments/", views.StockAdjustmentApi.as_view(), name="stock-adjustments"),
    path("stock/safety/", views.SafetyStockApi.as_view(), name="stock-safety"),
    path("stock/transfers/", views.TransferListCreateApi.as_view(), name="stock-transfers"),
    path("stock/transfers/<int:transfer_id>/", views.TransferDetailApi.as_view(), name="stock-transfer"),
    path(
        "stock/transfers/<int:transfer_id>/receive/",
        views.TransferReceiveApi.as_view(),
        name="stock-transfer-receive",
    ),
    path("stock/movements/", views.MovementListApi.as_view(), name="stock-movements"),
]
