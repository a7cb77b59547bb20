use migrations_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!(migrations);

fn main() {
    let _ = MIGRATIONS.len();
}
