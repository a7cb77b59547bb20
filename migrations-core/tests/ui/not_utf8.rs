use migrations_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("tests/ui/fixtures/not_utf8");

fn main() {
    let _ = MIGRATIONS.len();
}
