use migrations_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("tests/ui/fixtures/copy_from_stdin");

fn main() {
    let _ = MIGRATIONS.len();
}
