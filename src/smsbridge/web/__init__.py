"""The web admin at ``/admin``: server-rendered pages (Jinja2), htmx vendored, no build step."""
