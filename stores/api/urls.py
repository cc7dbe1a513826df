from django.urls import path

from . import views

urlpatterns = [
    path("locations/", views.LocationListApi.as_view(), name="location-list"),
    path("locations/<str:code>/", views.LocationDetailApi.as_view(), name="location-detail"),
    path("locations/<str:code>/stock/", views.LocationStockApi.as_view(), name="location-stock"),
]
