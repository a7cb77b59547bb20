use migrations_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("tests/ui/fixtures/empty_up");

fn main() {
    let _ = MIGRATIONS.len();
}
