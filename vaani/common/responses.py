from rest_framework.response import Response


class ApiResponse(Response):
    """A DRF response that carries the envelope's human ``message``."""

    def __init__(self, data=None, *, message: str | None = None, status=None, headers=None):
        super().__init__(data, status=status, headers=headers)
        self.message = message
