//! `migrations init`: the directory, and the `build.rs` line that makes Cargo see new files.

use std::fs;
use std::path::Path;

use crate::context::Context;
use crate::exit::Error;

pub fn run(ctx: &Context<'_>) -> Result<(), Error> {
    let dir = ctx.global.dir.as_path();
    let mut done = Vec::new();
    if dir.is_dir() {
        done.push(format!("{} exists", dir.display()));
    } else {
        fs::create_dir_all(dir)
            .map_err(|e| Error::Io(format!("cannot create {}: {e}", dir.display())))?;
        done.push(format!("created {}", dir.display()));
    }
    let line = format!(
        "println!(\"cargo:rerun-if-changed={}\");",
        dir.display().to_string().replace('\\', "/")
    );
    let build_rs = Path::new("build.rs");
    if !Path::new("Cargo.toml").is_file() {
        done.push(format!(
            "no Cargo.toml here: in the crate that calls embed_migrations!, put this line in \
             build.rs's main(): {line}"
        ));
    } else {
        match fs::read_to_string(build_rs) {
            Ok(text) if text.contains("rerun-if-changed") => done.push(format!(
                "build.rs already has a rerun-if-changed line; check that it names {}",
                dir.display()
            )),
            Ok(_) => done.push(format!(
                "build.rs exists: add this line to its main() so new migration files rebuild \
                 the crate: {line}"
            )),
            Err(_) => {
                let text = format!(
                    "// Rebuild when a migration file is added: embed_migrations! only tracks \
                     files it saw.\nfn main() {{\n    {line}\n}}\n"
                );
                fs::write(build_rs, text)
                    .map_err(|e| Error::Io(format!("cannot write build.rs: {e}")))?;
                done.push("created build.rs".to_owned());
            }
        }
    }
    for line in &done {
        ctx.out.line(line);
    }
    ctx.out
        .document(serde_json::json!({ "command": "init", "done": done }));
    Ok(())
}
