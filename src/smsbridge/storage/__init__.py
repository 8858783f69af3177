"""Persistence: SQLAlchemy Core tables, repositories, dialect-specific claims, migrations."""
