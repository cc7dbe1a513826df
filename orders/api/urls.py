from django.urls import path

from . import views

urlpatterns = [
    path("orders/", views.OrderListCreateApi.as_view(), name="order-list"),
    path("orders/<str:number>/", views.OrderDetailApi.as_view(), name="order-detail"),
    path("orders/<str:number>/events/", views.OrderEventsApi.as_view(), name="order-events"),
    path("orders/<str:number>/notes/", views.OrderNotesApi.as_view(), name="order-notes"),
    path("orders/<str:number>/cancel/", views.OrderCancelApi.as_view(), name="order-cancel"),
    path("orders/<str:number>/arrived/", views.OrderArrivedApi.as_view(), name="order-arrived"),
    path("fulfillments/", views.FulfillmentListApi.as_view(), name="fulfillment-list"),
    path("fulfillments/claim/", views.FulfillmentClaimApi.as_view(), name="fulfillment-claim"),
    path("fulfillments/<int:pk>/", views.FulfillmentDetailApi.as_view(), name="fulfillment-detail"),
    path("fulfillments/<int:pk>/pick/", views.FulfillmentPickApi.as_view(), name="fulfillment-pick"),
    path("fulfillments/<int:pk>/pack/", views.FulfillmentPackApi.as_view(), name="fulfillment-pack"),
    path("fulfillments/<int:pk>/ship/", views.FulfillmentShipApi.as_view(), name="fulfillment-ship"),
    path("fulfillments/<int:pk>/ready/", views.FulfillmentReadyApi.as_view(), name="fulfillment-ready"),
    path("fulfillments/<int:pk>/collect/", views.FulfillmentCollectApi.as_view(), name="fulfillment-collect"),
    path(
        "fulfillments/<int:pk>/new-pickup-code/",
        views.FulfillmentNewPickupCodeApi.as_view(),
        name="fulfillment-new-pickup-code",
    ),
    path("fulfillments/<int:pk>/extend/", views.FulfillmentExtendApi.as_view(), name="fulfillment-extend"),
    path("fulfillments/<int:pk>/cancel/", views.FulfillmentCancelApi.as_view(), name="fulfillment-cancel"),
    path("fulfillments/<int:pk>/locker/", views.FulfillmentLockerApi.as_view(), name="fulfillment-locker"),
    path("fulfillments/<int:pk>/unload/", views.FulfillmentUnloadApi.as_view(), name="fulfillment-unload"),
    path("lockers/", views.LockerListApi.as_view(), name="locker-list"),
    path("lockers/<str:code>/open/", views.LockerOpenApi.as_view(), name="locker-open"),
    path("holds/", views.HoldCreateApi.as_view(), name="hold-create"),
    path("holds/<str:hold_id>/", views.HoldDetailApi.as_view(), name="hold-detail"),
    path("holds/<str:hold_id>/extend/", views.HoldExtendApi.as_view(), name="hold-extend"),
    path("customers/<int:pk>/", views.CustomerDetailApi.as_view(), name="customer-detail"),
    path(
        "customers/<int:pk>/preferences/", views.CustomerPreferencesApi.as_view(), name="customer-preferences"
    ),
]
