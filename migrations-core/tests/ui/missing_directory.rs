use migrations_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("tests/ui/fixtures/does_not_exist");

fn main() {
    let _ = MIGRATIONS.len();
}
