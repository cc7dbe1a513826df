"""Request hygiene shared by the API and the admin."""

from urllib.parse import unquote

from django.http import JsonResponse

from config.errors import error_body


class RejectNulBytesMiddleware:
    """A NUL byte in the path or query string is never valid input here (PostgreSQL text cannot
    hold it): answer 400 in the API's error shape before any view or query sees it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raw_query = request.META.get("QUERY_STRING", "")
        if "\x00" in request.path or "\x00" in unquote(raw_query):
            return JsonResponse(
                error_body("invalid", "The request contains a NUL byte.", {"field": "url"}), status=400
            )
        return self.get_response(request)
