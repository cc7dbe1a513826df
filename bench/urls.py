"""URLs of the bench server only (ROOT_URLCONF=bench.urls): the whole app plus the framework floor.

The floor is what DRF itself costs on this machine for a read: an APIView doing one indexed read
(a stock level by primary key), measured in the same run as the real endpoints. `floor/` uses the
project's authentication and permission (knox token, IsAuthenticated) like every real endpoint;
`floor-noauth/` drops them, to show what authentication costs.
"""

from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory.models import StockLevel

FIELDS = ("id", "sku_id", "location_id", "on_hand", "reserved", "held", "safety_stock")


class StockFloor(APIView):
    def get(self, request):
        try:
            pk = int(request.query_params.get("id", "1"))
        except ValueError:
            pk = 1
        return Response(StockLevel.objects.filter(pk=pk).values(*FIELDS).first() or {})


class StockFloorNoAuth(StockFloor):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []  # anonymous: the API's per-address limit would refuse the load


urlpatterns = [
    path("bench/floor/", StockFloor.as_view()),
    path("bench/floor-noauth/", StockFloorNoAuth.as_view()),
    path("", include("config.urls")),
]
