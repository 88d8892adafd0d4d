"""A host URLconf that does not mount the link pages (for check W013)."""

urlpatterns: list = []
