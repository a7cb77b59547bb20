//! `verify_lock` with a lock that matches, plus a new migration not locked yet: it compiles,
//! since only locked migrations are checked.

use migrations_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("tests/ui/fixtures/locked_ok", verify_lock);

fn main() {
    assert_eq!(MIGRATIONS.len(), 2);
}
