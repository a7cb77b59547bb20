use migrations_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("tests/ui/fixtures/repeatable_with_version");

fn main() {
    let _ = MIGRATIONS.len();
}
