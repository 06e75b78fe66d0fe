"""Store adapters: ``memory.MemoryStore``, ``sqlite.SQLiteStore``, ``postgres.PostgresStore``."""
