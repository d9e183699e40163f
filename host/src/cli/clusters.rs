//! The layout of a snapshot of several clusters (`snapshot -o DIR` with
//! `--context` given more than once or `--all-contexts`): a bundle per
//! cluster in a subdirectory named after its context, and `clusters.json`
//! naming each context with its subdirectory, or with why it was not read.
//! `diagnose -f DIR` reads it back, each bundle as its cluster.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, LoadError};

/// The file that makes a directory a snapshot of several clusters.
pub const CLUSTERS_FILE: &str = "clusters.json";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Clusters {
    clusters: Vec<Cluster>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cluster {
    /// The kubeconfig context.
    context: String,
    /// Its bundle: a subdirectory of the snapshot's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dir: Option<String>,
    /// Why it was not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// What a snapshot of several clusters holds.
pub struct Saved {
    /// Each cluster read: its context and its bundle's directory.
    pub read: Vec<(String, PathBuf)>,
    /// Each cluster not read: its context and why.
    pub unread: Vec<(String, String)>,
}

/// The snapshot of several clusters `files` name, if they name one: it is
/// read alone.
pub fn read(files: &[PathBuf]) -> Result<Option<Saved>, Error> {
    let Some(dir) = files.iter().find(|f| f.join(CLUSTERS_FILE).is_file()) else {
        return Ok(None);
    };
    let path = dir.join(CLUSTERS_FILE);
    let invalid = |message: String| LoadError::Invalid { path: path.display().to_string(), message };
    if files.len() > 1 {
        return Err(
            invalid("a snapshot of several clusters is read alone: give only its directory to -f".into()).into()
        );
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| LoadError::Io { path: path.display().to_string(), message: e.to_string() })?;
    let clusters: Clusters = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let mut saved = Saved { read: Vec::new(), unread: Vec::new() };
    for c in clusters.clusters {
        match (c.dir, c.error) {
            (Some(sub), None) => {
                let mut parts = Path::new(&sub).components();
                if !matches!((parts.next(), parts.next()), (Some(Component::Normal(_)), None)) {
                    return Err(
                        invalid(format!("context `{}`: `{sub}` is not a subdirectory's name", c.context)).into()
                    );
                }
                saved.read.push((c.context, dir.join(sub)));
            }
            (None, Some(error)) => saved.unread.push((c.context, error)),
            _ => return Err(invalid(format!("context `{}`: expected either `dir` or `error`", c.context)).into()),
        }
    }
    if saved.read.is_empty() {
        return Err(invalid("no cluster was read".into()).into());
    }
    Ok(Some(saved))
}

/// Writes `clusters.json` in `dir`: each context read with its bundle's
/// subdirectory, each other one with why it was not read.
pub fn write_index(dir: &Path, read: &[(String, String)], unread: &[(String, String)]) -> Result<(), Error> {
    let read =
        read.iter().map(|(context, sub)| Cluster { context: context.clone(), dir: Some(sub.clone()), error: None });
    let unread =
        unread.iter().map(|(context, why)| Cluster { context: context.clone(), dir: None, error: Some(why.clone()) });
    let text = serde_json::to_string_pretty(&Clusters { clusters: read.chain(unread).collect() }).unwrap_or_default();
    let path = dir.join(CLUSTERS_FILE);
    std::fs::write(&path, text + "\n")
        .map_err(|e| LoadError::Io { path: path.display().to_string(), message: e.to_string() })?;
    Ok(())
}

/// The subdirectory for a context's bundle, not one of `taken`, which it
/// joins: the context's name with characters a path cannot take
/// (`arn:aws:eks:...:cluster/prod`) as `_` (letters, digits, `.`, `_` and
/// `-` are kept), and `-2`, `-3`... when that is taken.
pub fn subdirectory(context: &str, taken: &mut Vec<String>) -> String {
    let name: String =
        context.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    let name = if name.is_empty() || name.chars().all(|c| c == '.') { format!("_{name}") } else { name };
    let free = |n: &String| !taken.contains(n) && n != CLUSTERS_FILE;
    let sub = std::iter::once(name.clone()).chain((2..).map(|i| format!("{name}-{i}"))).find(free).unwrap_or(name);
    taken.push(sub.clone());
    sub
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_names_a_directory_of_its_own() {
        let mut taken = Vec::new();
        let mut sub = |context: &str| subdirectory(context, &mut taken);
        assert_eq!(sub("arn:aws:eks:eu-west-1:1234:cluster/prod"), "arn_aws_eks_eu-west-1_1234_cluster_prod");
        assert_eq!(sub(".."), "_..");
        assert_eq!(sub(""), "_");
        assert_eq!((sub("a:b"), sub("a/b"), sub("a_b")), ("a_b".into(), "a_b-2".into(), "a_b-3".into()));
        assert_eq!(sub("clusters.json"), "clusters.json-2");
    }
}
