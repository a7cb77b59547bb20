use migrations_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("tests/ui/fixtures/directive_after_sql");

fn main() {
    let _ = MIGRATIONS.len();
}
