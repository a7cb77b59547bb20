use migrations_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations =
    embed_migrations!("tests/ui/fixtures/locked_ok", verify_lock, verify_lock);

fn main() {
    let _ = MIGRATIONS.len();
}
