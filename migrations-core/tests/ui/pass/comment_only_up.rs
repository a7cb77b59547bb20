//! An up file of comments alone is a no-op migration, not a compile error: histories adopted
//! from sqlx hold such files unchanged (the lint's `empty-migration` flags new ones).

use migrations_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("tests/ui/fixtures/comment_only_up");

fn main() {
    assert_eq!(MIGRATIONS.len(), 1);
    let up = MIGRATIONS.get(1).unwrap().up();
    assert_eq!(up.statements().count(), 0);
}
