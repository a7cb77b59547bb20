-- This file has no SQL; it is a no-op down migration.
/* Nothing; to see; here. */
