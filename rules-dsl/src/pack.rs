//! What a compiled pack declares: the Rust mirror of `plugin-info` in
//! `wit/plugin.wit`, written into the component as static data.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Info,
    Warning,
    Error,
    Critical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Pod,
    Container,
    /// A ReplicaSet, Deployment, StatefulSet, DaemonSet, Job, CronJob or ReplicationController.
    Workload,
}

/// A text in English, first, then in other languages.
#[derive(Debug, Clone, PartialEq)]
pub struct Text {
    pub translations: Vec<Translation>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    pub lang: String,
    pub text: String,
}

impl Text {
    /// The English text, which every text has first.
    pub fn english(en: String) -> Text {
        Text { translations: vec![Translation { lang: "en".to_string(), text: en }] }
    }

    pub fn en(&self) -> &str {
        self.translations.first().map_or("", |t| t.text.as_str())
    }
}

/// `tag` in its canonical case if it is a valid BCP 47 language tag (every
/// subtag in the IANA registry: `zh`, `ja`, `pt-BR`, `zh-Hant`), else why not.
pub fn lang_tag(tag: &str) -> Result<String, String> {
    let parsed = language_tags::LanguageTag::parse(tag).map_err(|e| e.to_string())?;
    parsed.validate().map_err(|e| e.to_string())?;
    Ok(parsed.into_string())
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleInfo {
    pub id: String,
    pub cause: String,
    pub severity: Severity,
    pub confidence: f32,
    pub scope: Scope,
    pub title: Text,
    pub detects: Text,
    pub why: Text,
    pub confirm: Vec<Text>,
    pub fix: Vec<Text>,
    pub evidence: Vec<Text>,
    pub explains: Vec<String>,
    pub references: Vec<String>,
    pub arguments: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Collection {
    pub parent: Option<u32>,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Derive {
    Value,
    Quantity,
    Version,
    Timestamp,
    Matches(String),
    /// The first group of the regular expression's first match in a string
    /// (the whole match when it has no group); null when it does not match.
    Capture(String),
    Contains(String),
    StartsWith(String),
    EndsWith(String),
    Length,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Input {
    pub collection: Option<u32>,
    pub path: String,
    pub derive: Derive,
    /// Only shown in findings, never tested: the host sends no column for it.
    pub shown_only: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub rules: Vec<RuleInfo>,
    pub collections: Vec<Collection>,
    pub inputs: Vec<Input>,
    pub literals: Vec<String>,
}

/// The most a regular expression of a pack (`matches`, `capture`) may
/// compile to: the host refuses a pack with a larger one, so `check` does too.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// The most distinct regular expressions a pack may declare (inputs derived
/// with `matches` or `capture`): the host refuses more, so `check` does too.
pub const MAX_REGEXES: usize = 256;

/// Value tags of a column cell, as in `wit/plugin.wit`.
pub mod tag {
    pub const NULL: i32 = 0;
    pub const BOOL: i32 = 1;
    pub const INT: i32 = 2;
    pub const FLOAT: i32 = 3;
    pub const STRING: i32 = 4;
}

/// Joins path segments: identifiers with `.`, other keys as `["key"]`.
pub fn join_path(segments: &[String]) -> String {
    let mut out = String::new();
    for s in segments {
        if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(s);
        } else {
            out.push_str("[\"");
            out.push_str(&s.replace('\\', "\\\\").replace('"', "\\\""));
            out.push_str("\"]");
        }
    }
    out
}

/// Splits a path written by [`join_path`] back into its segments.
pub fn split_path(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = path.chars().peekable();
    let mut cur = String::new();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            '[' if chars.peek() == Some(&'"') => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                chars.next();
                let mut key = String::new();
                while let Some(k) = chars.next() {
                    match k {
                        '\\' => {
                            if let Some(e) = chars.next() {
                                key.push(e);
                            }
                        }
                        '"' => break,
                        other => key.push(other),
                    }
                }
                if chars.peek() == Some(&']') {
                    chars.next();
                }
                out.push(key);
            }
            other => cur.push(other),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Whether a rule whose cause is `cause` can give a finding that the
/// `explains` key `key` covers: `key` itself or a refinement of it
/// (`key.more`). A `{...}` in `cause` (a placeholder, `{0}` once compiled)
/// stands for any text.
pub fn cause_covers(cause: &str, key: &str) -> bool {
    let mut pieces = Vec::new();
    let mut rest = cause;
    while let Some(open) = rest.find('{') {
        pieces.push(Some(&rest[..open]));
        pieces.push(None);
        rest = rest[open..].find('}').map_or("", |close| &rest[open + close + 1..]);
    }
    pieces.push(Some(rest));
    let refined = format!("{key}.");
    // the key matched whole, or `key.` as the start of a match
    glob(&pieces, key, false) || glob(&pieces, &refined, true)
}

/// Whether `text` matches `pieces` (literals, and `None` for any text); with
/// `prefix`, whether it starts some text that does. Positions reached after
/// each piece, so linear in pieces times text.
fn glob(pieces: &[Option<&str>], text: &str, prefix: bool) -> bool {
    let mut at = vec![false; text.len() + 1];
    at[0] = true;
    for piece in pieces {
        if prefix && at[text.len()] {
            return true;
        }
        let mut next = vec![false; text.len() + 1];
        match piece {
            Some(lit) => {
                for j in (0..=text.len()).filter(|&j| at[j]) {
                    if text[j..].starts_with(lit) {
                        next[j + lit.len()] = true;
                    } else if prefix && lit.starts_with(&text[j..]) {
                        return true;
                    }
                }
            }
            None => {
                if let Some(first) = at.iter().position(|&a| a) {
                    (first..=text.len()).filter(|&k| text.is_char_boundary(k)).for_each(|k| next[k] = true);
                }
            }
        }
        at = next;
    }
    at[text.len()]
}

/// Encodes a version as major*1_000_000 + minor*1_000 + patch.
pub fn encode_version(major: u32, minor: u32, patch: u32) -> i64 {
    i64::from(major) * 1_000_000 + i64::from(minor.min(999)) * 1_000 + i64::from(patch.min(999))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_cover_their_keys_refinements_and_template_instances() {
        let covers = [
            ("cgroup-oom", "cgroup-oom", true),
            ("app-exit.crash", "app-exit", true),
            ("app-exit", "app-exit.crash", false),
            ("app-exitx", "app-exit", false),
            ("signal.{0}", "signal.SIGKILL", true),
            ("signal.{signal[code - 128]}", "signal", true),
            ("signal.{0}", "signals", false),
            ("{0}.{1}", "a.b", true),
            ("x.{0}.y", "x.a.b.y", true),
            ("x.{0}.y", "x.a.z", true),
            ("x.{0}.y", "z", false),
            ("state.CrashLoopBackOff", "state.CrashLoopBackof", false),
        ];
        for (cause, key, want) in covers {
            assert_eq!(cause_covers(cause, key), want, "{cause} covers {key}");
        }
    }

    #[test]
    fn paths_round_trip() {
        let segs: Vec<String> = ["metadata", "labels", "app.kubernetes.io/name", "x"].map(String::from).to_vec();
        let joined = join_path(&segs);
        assert_eq!(joined, r#"metadata.labels["app.kubernetes.io/name"].x"#);
        assert_eq!(split_path(&joined), segs);
        assert_eq!(split_path(""), Vec::<String>::new());
    }
}
