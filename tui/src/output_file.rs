//! A file the operator named for output (`export --output`): never written over an
//! existing one unless asked (`--force`), and never left half-written: the text goes to
//! a temporary file beside it, which takes the name only once it is complete.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{AdminError, Result};

/// Refuses a `path` that exists unless `overwrite`: before any work, and again just
/// before the file takes its name.
pub fn check(path: &Path, overwrite: bool) -> Result<()> {
    if !overwrite && path.symlink_metadata().is_ok() {
        return Err(AdminError::new(format!(
            "{} already exists; pass --force to overwrite it (nothing was written)",
            path.display()
        )));
    }
    Ok(())
}

/// Writes `path` with what `write` puts in it, through a temporary file in the same
/// folder renamed over `path` at the end (an existing file keeps its permissions). If
/// anything fails, `path` is as it was and the temporary file is gone.
pub fn write(
    path: &Path,
    overwrite: bool,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<()> {
    check(path, overwrite)?;
    let cannot =
        |err: io::Error| AdminError::new(format!("cannot write {}: {err}", path.display()));
    let (mut file, temporary) = create_beside(path).map_err(cannot)?;
    write(&mut file)
        .and_then(|()| {
            if let Ok(existing) = std::fs::metadata(path) {
                file.set_permissions(existing.permissions())?;
            }
            file.sync_all()
        })
        .map_err(cannot)?;
    drop(file);
    // Someone may have made the file while this one was written.
    check(path, overwrite)?;
    std::fs::rename(&temporary.path, path).map_err(cannot)?;
    temporary.keep();
    Ok(())
}

/// A temporary file, removed when dropped unless kept.
struct Temporary {
    path: PathBuf,
    kept: bool,
}

impl Temporary {
    fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A new, hidden file in `path`'s folder (a rename to `path` stays on one file system):
/// `.bundle.json.1234.tmp`.
fn create_beside(path: &Path) -> io::Result<(File, Temporary)> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    let folder = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    let mut attempt = 0;
    loop {
        let mut hidden = std::ffi::OsString::from(".");
        hidden.push(name);
        hidden.push(format!(".{}.{attempt}.tmp", std::process::id()));
        let candidate = folder.join(hidden);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(file) => {
                let temporary = Temporary {
                    path: candidate,
                    kept: false,
                };
                return Ok((file, temporary));
            }
            // One a crashed run left with this process id: take the next name.
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1;
            }
            Err(err) => return Err(err),
        }
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
}
