use migrations_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("tests/ui/fixtures/bad_settings");

fn main() {
    let _ = MIGRATIONS.len();
}
