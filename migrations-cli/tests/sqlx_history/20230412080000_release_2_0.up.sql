-- Release 2.0 ships no schema change; this migration only marks the release in the history.

/* Kept so that every release has a migration to revert to. */
