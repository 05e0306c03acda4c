"""Records: SQLAlchemy tables, sessions, repository functions and Alembic migrations."""
