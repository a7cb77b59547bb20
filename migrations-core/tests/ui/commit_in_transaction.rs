use migrations_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("tests/ui/fixtures/commit_in_transaction");

fn main() {
    let _ = MIGRATIONS.len();
}
