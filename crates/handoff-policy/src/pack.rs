//! Policy packs as files: what `handoff policy push` uploads and what the
//! store keeps per version. Reading a directory is the only IO in this
//! crate, and it is bounded.

use crate::error::PackError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Largest pack, all files together, in bytes.
pub const MAX_PACK_BYTES: usize = 1024 * 1024;
/// Most files in one pack.
pub const MAX_PACK_FILES: usize = 256;

/// The cedarschema text schema file.
pub(crate) const SCHEMA_FILE: &str = "schema.cedarschema";
/// The JSON schema file.
pub(crate) const SCHEMA_JSON_FILE: &str = "schema.cedarschema.json";
/// Non-identity entities and team memberships.
pub(crate) const ENTITIES_FILE: &str = "entities.json";
/// Pack settings.
pub(crate) const SETTINGS_FILE: &str = "pack.toml";
/// Offline tests; ignored by [`crate::compile`].
pub(crate) const TESTS_FILE: &str = "tests.json";

/// A policy pack as files: relative file name → UTF-8 contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PackFiles {
    /// The files, by name.
    pub files: BTreeMap<String, String>,
}

/// Whether `name` is one of the files a pack is made of.
pub(crate) fn is_pack_file(name: &str) -> bool {
    matches!(
        name,
        SCHEMA_FILE | SCHEMA_JSON_FILE | ENTITIES_FILE | SETTINGS_FILE
    ) || is_policy_file(name)
}

/// Whether `name` holds Cedar policies.
pub(crate) fn is_policy_file(name: &str) -> bool {
    name.len() > ".cedar".len() && name.ends_with(".cedar")
}

impl PackFiles {
    /// Reads a pack from the top level of `dir`: `schema.cedarschema` or
    /// `schema.cedarschema.json`, `*.cedar`, `entities.json` and `pack.toml`.
    /// Other files (`tests.json`, a README) and subdirectories are ignored.
    pub fn load_dir(dir: &Path) -> Result<Self, PackError> {
        let io = |path: &Path, source| PackError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
            let entry = entry.map_err(|e| io(dir, e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if is_pack_file(&name) {
                names.push(name);
            }
        }
        if names.len() > MAX_PACK_FILES {
            return Err(PackError::TooManyFiles);
        }
        let mut total = 0usize;
        let mut files = BTreeMap::new();
        for name in names {
            let path = dir.join(&name);
            let meta = std::fs::metadata(&path).map_err(|e| io(&path, e))?;
            if !meta.is_file() {
                continue;
            }
            // Check the size before reading, so a huge file is never loaded.
            total = total.saturating_add(usize::try_from(meta.len()).unwrap_or(usize::MAX));
            if total > MAX_PACK_BYTES {
                return Err(PackError::TooLarge);
            }
            let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
            let text = String::from_utf8(bytes).map_err(|_| PackError::NotUtf8(name.clone()))?;
            files.insert(name, text);
        }
        let read: usize = files.values().map(String::len).sum();
        if read > MAX_PACK_BYTES {
            return Err(PackError::TooLarge);
        }
        Ok(Self { files })
    }

    /// Total size of the files, in bytes.
    pub(crate) fn size(&self) -> usize {
        self.files.values().map(String::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("handoff-policy-pack-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn load_dir_reads_pack_files_and_ignores_others() {
        let dir = temp_dir("read");
        std::fs::write(dir.join("schema.cedarschema"), "entity User;").unwrap();
        std::fs::write(dir.join("a.cedar"), "permit(principal, action, resource);").unwrap();
        std::fs::write(dir.join("tests.json"), "[]").unwrap();
        std::fs::write(dir.join("README.md"), "hi").unwrap();
        std::fs::create_dir(dir.join("sub.cedar")).unwrap();
        let pack = PackFiles::load_dir(&dir).unwrap();
        let names: Vec<_> = pack.files.keys().cloned().collect();
        assert_eq!(names, ["a.cedar", "schema.cedarschema"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn load_dir_refuses_large_and_non_utf8_packs() {
        let dir = temp_dir("limits");
        std::fs::write(dir.join("big.cedar"), vec![b' '; MAX_PACK_BYTES + 1]).unwrap();
        assert!(matches!(
            PackFiles::load_dir(&dir),
            Err(PackError::TooLarge)
        ));
        std::fs::remove_file(dir.join("big.cedar")).unwrap();
        std::fs::write(dir.join("bad.cedar"), [0xff, 0xfe]).unwrap();
        let err = PackFiles::load_dir(&dir).unwrap_err();
        assert_eq!(err.to_string(), "\"bad.cedar\" is not utf-8 text");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(
            PackFiles::load_dir(&dir),
            Err(PackError::Io { .. })
        ));
    }
}
