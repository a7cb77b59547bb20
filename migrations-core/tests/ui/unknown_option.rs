use migrations_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("tests/ui/fixtures/ok", verify_lok);

fn main() {
    let _ = MIGRATIONS.len();
}
