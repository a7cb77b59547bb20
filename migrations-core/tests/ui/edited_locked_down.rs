use migrations_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("tests/ui/fixtures/edited_locked_down", verify_lock);

fn main() {
    let _ = MIGRATIONS.len();
}
