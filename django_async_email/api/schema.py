"""OpenAPI descriptions through drf-spectacular when it is installed; a no-op otherwise."""

try:
    from drf_spectacular.utils import OpenApiResponse, extend_schema
except ImportError:  # drf-spectacular is optional
    OpenApiResponse = None  # type: ignore[assignment, misc]  # fallback for the optional import: None = absent

    def extend_schema(*args, **kwargs):  # type: ignore[misc]  # no-op stand-in; cannot match the real signature
        def decorate(func):
            return func

        return decorate


def describe(summary, request=None, responses=None, description=""):
    """``extend_schema`` with ``{status: (serializer, text)}`` responses."""
    if OpenApiResponse is None:
        return extend_schema()
    built = {code: OpenApiResponse(response=ser, description=text) for code, (ser, text) in (responses or {}).items()}
    return extend_schema(summary=summary, description=description, request=request, responses=built)
