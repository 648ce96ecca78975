//! Uploaded files in `UPLOAD_FOLDER`: their names, and the clean-up at start of those
//! that no camera uses any more.

use std::path::{Path, PathBuf};

/// A unique, harmless file name that keeps the caller's extension (demuxers use it).
pub fn file_name(original: &str) -> String {
    let base = Path::new(original)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let clean = clean.trim_start_matches('.');
    let tail: String = clean
        .chars()
        .rev()
        .take(80)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!(
        "{}-{:08x}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis()),
        rand::random::<u32>(),
        if tail.is_empty() {
            "upload".to_owned()
        } else {
            tail
        }
    )
}

/// Whether a file name is one that [`file_name`] makes: `<millis>-<8 hex>-<name>`.
pub fn is_upload_name(name: &str) -> bool {
    let mut parts = name.splitn(3, '-');
    let (Some(millis), Some(random), Some(rest)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !millis.is_empty()
        && millis.bytes().all(|b| b.is_ascii_digit())
        && random.len() == 8
        && random.bytes().all(|b| b.is_ascii_hexdigit())
        && !rest.is_empty()
}

/// Removes the uploads in `folder` that are not among `in_use` (the sources of the
/// cameras resumed at start); other files there are the operator's and stay. Returns
/// how many were removed.
pub fn remove_unused(folder: &Path, in_use: &[PathBuf]) -> usize {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return 0;
    };
    let in_use: Vec<PathBuf> = in_use
        .iter()
        .filter_map(|p| p.canonicalize().ok())
        .collect();
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let is_upload =
            is_upload_name(&name.to_string_lossy()) && entry.file_type().is_ok_and(|t| t.is_file());
        let used = path.canonicalize().is_ok_and(|p| in_use.contains(&p));
        if !is_upload || used {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) => log::warn!("could not remove unused upload {}: {e}", path.display()),
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_names_are_harmless() {
        let name = file_name("../../etc/passwd");
        assert!(name.ends_with("-passwd"), "{name}");
        assert!(!name.contains('/'));
        assert!(file_name("").ends_with("-upload"));
        assert!(file_name("a b.mp4").ends_with("-a_b.mp4"));
        assert!(file_name(".hidden.mp4").ends_with("-hidden.mp4"));
    }

    #[test]
    fn only_unused_uploads_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let used = dir.path().join(file_name("a.mp4"));
        let unused = dir.path().join(file_name("b.mp4"));
        let mine = dir.path().join("sample.mp4");
        for path in [&used, &unused, &mine] {
            std::fs::write(path, b"x").unwrap();
        }
        assert!(is_upload_name(
            &unused.file_name().unwrap().to_string_lossy()
        ));
        assert!(!is_upload_name("sample.mp4"));
        assert_eq!(remove_unused(dir.path(), std::slice::from_ref(&used)), 1);
        assert!(used.exists() && mine.exists() && !unused.exists());
    }
}
