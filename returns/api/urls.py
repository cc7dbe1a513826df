from django.urls import path

from . import views

urlpatterns = [
    path("refunds/", views.RefundListApi.as_view(), name="refund-list"),
    path("refunds/<int:pk>/", views.RefundDetailApi.as_view(), name="refund-detail"),
    path("refunds/<int:pk>/complete/", views.RefundCompleteApi.as_view(), name="refund-complete"),
    path("refunds/<int:pk>/fail/", views.RefundFailApi.as_view(), name="refund-fail"),
    path("returns/", views.ReturnListCreateApi.as_view(), name="return-list"),
    path("returns/<str:number>/", views.ReturnDetailApi.as_view(), name="return-detail"),
    path("returns/<str:number>/cancel/", views.ReturnCancelApi.as_view(), name="return-cancel"),
    path("returns/<str:number>/receive/", views.ReturnReceiveApi.as_view(), name="return-receive"),
    path("returns/<str:number>/notes/", views.ReturnNotesApi.as_view(), name="return-notes"),
]
