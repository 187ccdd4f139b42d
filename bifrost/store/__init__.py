"""SQLAlchemy persistence: tables, repositories returning pydantic records, units of work."""
