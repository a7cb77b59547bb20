use migrations_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("tests/ui/fixtures/placeholder_value");

fn main() {
    let _ = MIGRATIONS.len();
}
