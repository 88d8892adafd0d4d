"""OpenAPI descriptions through drf-spectacular when it is installed; a no-op otherwise."""

try:
    from drf_spectacular.utils import OpenApiResponse, extend_schema
except ImportError:  # drf-spectacular is optional
    OpenApiResponse = None  # type: ignore[assignment, misc]  # fallback for the optional import: None = absent

    def extend_schema(*args, **kwargs):  # type: ignore[misc]  # no-op stand-in; cannot match the real signature
        def decorate(func):
            return func

        return decorate


#: Every error body: ``{"detail": "..."}``, or field errors ``{field: ["message", ...]}``
#: (a list field's errors can be nested by position), shaped by the host's exception handler.
ERROR_BODY = {"type": "object", "description": "An error: `detail`, or messages keyed by field name"}

#: Answers any endpoint can give, besides its own.
COMMON_ERRORS = {
    401: (ERROR_BODY, "Credentials were sent and are wrong (with an authentication that asks for them)"),
    403: (ERROR_BODY, "Not allowed (not signed in, or lacking the permission)"),
    406: (ERROR_BODY, "The Accept header asks for a type the API does not answer in (it answers JSON)"),
    415: (ERROR_BODY, "The body's content type is not JSON, a form or multipart"),
    429: (ERROR_BODY, "Rate limit reached; Retry-After says when to try again"),
}


def describe(summary, request=None, responses=None, description=""):
    """``extend_schema`` with ``{status: (serializer or schema, text)}`` responses, plus the common errors."""
    if OpenApiResponse is None:
        return extend_schema()
    built = {code: OpenApiResponse(response=body, description=text)
             for code, (body, text) in {**COMMON_ERRORS, **(responses or {})}.items()}
    return extend_schema(summary=summary, description=description, request=request, responses=built)
