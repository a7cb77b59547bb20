use migrations_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("tests/ui/fixtures/stray_sql_file");

fn main() {
    let _ = MIGRATIONS.len();
}
