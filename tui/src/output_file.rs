//! A file the operator named for output (`export --output`): never written over an
//! existing one unless asked (`--force`), and never left half-written: the text goes to
//! a temporary file beside it, which takes the name only once it is complete. A symbolic
//! link is written through (the file it names is replaced, the link stays), and what is
//! not a regular file (a FIFO, `/dev/stdout`) is written directly, as `>` would.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{AdminError, Result};

/// Refuses a `path` that is a folder, or an existing file unless `overwrite`: before
/// any work is done.
pub fn check(path: &Path, overwrite: bool) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(AdminError::new(format!(
            "{} is a folder; --output names the file to write (nothing was written)",
            path.display()
        ))),
        Ok(meta) if meta.is_file() && !overwrite => Err(already_exists(path)),
        _ => Ok(()),
    }
}

fn already_exists(path: &Path) -> AdminError {
    AdminError::new(format!(
        "{} already exists; pass --force to overwrite it (nothing was written)",
        path.display()
    ))
}

/// Writes `path` with what `write` puts in it. A regular file (or none yet) is written
/// through a temporary file in the same folder, renamed over it at the end (an existing
/// file keeps its permissions); if anything fails, it is as it was and the temporary
/// file is gone. Anything else that is not a folder is opened and written as it is.
pub fn write(
    path: &Path,
    overwrite: bool,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<()> {
    check(path, overwrite)?;
    let cannot =
        |err: io::Error| AdminError::new(format!("cannot write {}: {err}", path.display()));
    let target = through_links(path);
    let existing = std::fs::metadata(&target).ok();
    if existing.as_ref().is_some_and(|meta| !meta.is_file()) {
        let mut file = OpenOptions::new()
            .write(true)
            .open(&target)
            .map_err(cannot)?;
        return write(&mut file).map_err(cannot);
    }
    let folder = match target.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    let mut hidden = std::ffi::OsString::from(".");
    hidden.push(target.file_name().unwrap_or_default());
    hidden.push(".");
    let mut temporary = tempfile::Builder::new()
        .prefix(&hidden)
        .suffix(".tmp")
        .tempfile_in(folder)
        .map_err(cannot)?;
    write(temporary.as_file_mut())
        .and_then(|()| {
            if let Some(existing) = &existing {
                temporary
                    .as_file()
                    .set_permissions(existing.permissions())?;
            }
            temporary.as_file().sync_all()
        })
        .map_err(cannot)?;
    // Without --force, a file someone made meanwhile is not replaced either.
    let persisted = if overwrite {
        temporary.persist(&target)
    } else {
        temporary.persist_noclobber(&target)
    };
    match persisted {
        Ok(_) => Ok(()),
        Err(err) if err.error.kind() == io::ErrorKind::AlreadyExists => Err(already_exists(path)),
        Err(err) => Err(cannot(err.error)),
    }
}

/// The file `path` names once symbolic links are followed (`path` itself when it is
/// not one, or names nothing yet).
fn through_links(path: &Path) -> PathBuf {
    match path.symlink_metadata() {
        Ok(meta) if meta.file_type().is_symlink() => {
            std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
        }
        _ => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn names(folder: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(folder)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_failed_write_leaves_no_half_file_and_the_old_one_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bundle.json");
        let half = |file: &mut File| -> io::Result<()> {
            file.write_all(b"{\"workflow\": ")?;
            Err(io::Error::other("disk full"))
        };

        let err = write(&path, false, half).unwrap_err().to_string();
        assert!(err.starts_with("cannot write "), "{err}");
        assert!(err.ends_with("bundle.json: disk full"), "{err}");
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));

        std::fs::write(&path, "old").unwrap();
        write(&path, true, half).unwrap_err();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(names(dir.path()), ["bundle.json"]);
    }

    #[test]
    fn an_existing_file_is_replaced_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bundle.json");
        std::fs::write(&path, "old").unwrap();
        let new = |file: &mut File| file.write_all(b"new");

        let err = write(&path, false, new).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{} already exists; pass --force to overwrite it (nothing was written)",
                path.display()
            )
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");

        write(&path, true, new).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(names(dir.path()), ["bundle.json"]);

        let fresh = dir.path().join("fresh.json");
        write(&fresh, false, new).unwrap();
        assert_eq!(std::fs::read_to_string(&fresh).unwrap(), "new");
    }

    /// `--output link.json --force` replaces the file the link names and keeps the
    /// link, as `>` would; renaming over the link replaced the link itself.
    #[test]
    fn a_symbolic_link_is_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        let link = dir.path().join("link.json");
        std::fs::write(&real, "old").unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();

        write(&link, true, |file| file.write_all(b"new")).unwrap();
        assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
        assert_eq!(names(dir.path()), ["link.json", "real.json"]);
    }

    /// A FIFO (a reader waiting on `mkfifo out; cat out`) gets the text; it was
    /// replaced by a regular file and the reader got nothing.
    #[test]
    fn a_fifo_is_written_to_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("out");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
        };

        write(&fifo, false, |file| file.write_all(b"bundle")).unwrap();
        assert_eq!(reader.join().unwrap(), "bundle");
        assert!(!std::fs::metadata(&fifo).unwrap().is_file());
    }

    #[test]
    fn a_folder_is_refused_as_one() {
        let dir = tempfile::tempdir().unwrap();
        let err = write(dir.path(), true, |file| file.write_all(b"new"))
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("is a folder; --output names the file to write (nothing was written)"),
            "{err}"
        );
        assert!(names(dir.path()).is_empty());
    }
}
