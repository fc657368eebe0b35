"""The fast lane in live server processes: ``tests.settings_mcp`` plus a middleware that stamps
every response it sees, so a test can tell which requests the lane served."""

from django.utils.deprecation import MiddlewareMixin

STAMP = "X-Through-Middleware"


class StampingMiddleware(MiddlewareMixin):
    def process_response(self, request, response):
        response[STAMP] = "1"
        return response
