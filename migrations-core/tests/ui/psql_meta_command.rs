use migrations_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("tests/ui/fixtures/psql_meta_command");

fn main() {
    let _ = MIGRATIONS.len();
}
