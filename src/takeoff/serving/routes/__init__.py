"""The HTTP routes, one module per resource; each has ``add_routes(app, ctx)``.

``predict``, ``recommend`` (and similar-items), ``search``, ``explain``, ``models`` (list,
detail, report), ``operations`` (health, readiness, metrics) and ``page`` (the web page and its
static files). :class:`~takeoff.serving.routes.context.RouteContext` is what they share.
"""
