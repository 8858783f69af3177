"""Persistence: SQLAlchemy Core tables, repositories, the dialect seam (dialects/), migrations."""
