//! What the fuzz targets share: a small tree of folders and files on disk, for the
//! checks that resolve local paths, and a daemon configuration pointing into it.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use video_pipeline::config::{Config, RawValues};

pub struct Scratch {
    /// Holds everything below; resolved, so that resolved paths can be compared with it.
    pub root: PathBuf,
    /// The one `ALLOWED_INPUT_DIRS` entry: `a.mp4`, `sub/b.mp4` and symbolic links to a
    /// file and a folder outside it.
    pub allowed: PathBuf,
    /// Files no source may name: `outside/c.mp4` and `allowed2/d.mp4` (a name that
    /// starts like the allowed folder's).
    pub outside: Vec<PathBuf>,
    /// Uploads go to `root/uploads`, frames to `root/frames`; uploads up to 1 MiB.
    pub config: Config,
}

/// Made once per process, in the temporary folder (`TMPDIR`).
pub fn scratch() -> &'static Scratch {
    static SCRATCH: LazyLock<Scratch> = LazyLock::new(make_scratch);
    &SCRATCH
}

fn make_scratch() -> Scratch {
    let root = std::env::temp_dir().join(format!("video-pipeline-fuzz-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    for dir in ["allowed/sub", "outside", "allowed2", "uploads", "frames"] {
        fs::create_dir_all(root.join(dir)).expect("the temporary folder is writable");
    }
    let root = root.canonicalize().expect("the scratch folder exists");
    for file in [
        "allowed/a.mp4",
        "allowed/sub/b.mp4",
        "outside/c.mp4",
        "allowed2/d.mp4",
    ] {
        fs::write(root.join(file), b"not a video").expect("the scratch folder is writable");
    }
    let allowed = root.join("allowed");
    link(&root.join("outside/c.mp4"), &allowed.join("link_out.mp4"));
    link(&root.join("outside"), &allowed.join("link_dir"));
    link(&allowed.join("a.mp4"), &allowed.join("link_in.mp4"));
    let raw: RawValues = [
        ("OUTPUT_FOLDER", root.join("frames")),
        ("UPLOAD_FOLDER", root.join("uploads")),
        ("ALLOWED_INPUT_DIRS", allowed.clone()),
    ]
    .into_iter()
    .map(|(name, path)| (name, path.display().to_string()))
    .chain([("MAX_UPLOAD_MB", "1".to_owned())])
    .collect();
    let config = Config::parse(&raw).expect("the scratch configuration is valid");
    Scratch {
        outside: vec![root.join("outside/c.mp4"), root.join("allowed2/d.mp4")],
        root,
        allowed,
        config,
    }
}

fn link(target: &Path, name: &Path) {
    std::os::unix::fs::symlink(target, name).expect("the scratch folder takes links");
}

/// Whether a resolved local source lies where the configuration allows: the allowed
/// folder or the upload folder, never one of the outside files.
pub fn allowed_file(scratch: &Scratch, path: &Path) -> bool {
    let inside = [&scratch.allowed, &scratch.config.upload_folder]
        .iter()
        .any(|dir| path.starts_with(dir));
    inside && path.is_file() && !scratch.outside.iter().any(|o| o == path)
}
