from django.urls import path

from . import views

urlpatterns = [
    path("refunds/", views.RefundListApi.as_view(), name="refund-list"),
    path("refunds/<int:pk>/", views.RefundDetailApi.as_view(), name="refund-detail"),
    path("refunds/<int:pk>/complete/", views.RefundCompleteApi.as_view(), name="refund-complete"),
    path("refunds/<int:pk>/fail/", views.RefundFailApi.as_view(), name="refund-fail"),
]
