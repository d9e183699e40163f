//! Container logs as untrusted text: each line is cut to a bounded length
//! and its secrets are replaced before anything keeps, shows or writes it.
//!
//! Built-in patterns (each value replaced by `[REDACTED]`):
//! - `Authorization: Bearer <token>` and any `bearer <token>`;
//! - the values of `password`, `passwd`, `pwd`, `secret`, `token`, `api_key`,
//!   `apikey`, `access_key`, `client_secret` after `=` or `:` (quoted or not);
//! - AWS access key ids (`AKIA...`, `ASIA...`);
//! - the user and password of a URL (`https://user:pass@host`);
//! - JSON Web Tokens (`eyJ...`), even cut short;
//! - every line of a PEM private-key block (`-----BEGIN ... PRIVATE KEY-----`
//!   to its `END` line).
//!
//! More patterns come from `redact:` in `k8srule.yaml`: each match is replaced whole.

use regex::{Captures, Regex};

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

/// Bytes kept of one line; the rest is cut with a marker.
pub const MAX_LINE_BYTES: usize = 4096;

const BUILTIN: &str = concat!(
    r"(?i:(?P<bearer>\bbearer\s+)[A-Za-z0-9\-._~+/]+=*)",
    r#"|(?i:(?P<key>\b(?:password|passwd|pwd|secret|client_secret|token|access_token|api_?key|access_?key)["']?\s*[=:]\s*["']?)[^\s"'&,;]+)"#,
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{12,16}\b",
    r"|(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@",
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*)?",
);

/// Replaces secrets in log lines.
#[derive(Debug, Clone)]
pub struct Redactor {
    builtin: Regex,
    extra: Vec<Regex>,
}

impl Redactor {
    /// The built-in patterns and `extra` (RE2 syntax); a pattern that does not
    /// compile is an error naming it.
    pub fn new(extra: &[String]) -> Result<Self, String> {
        let compile = |p: &str| Regex::new(p).map_err(|e| format!("redact pattern `{p}`: {e}"));
        let extra = extra.iter().map(|p| compile(p)).collect::<Result<_, _>>()?;
        Ok(Redactor { builtin: compile(BUILTIN)?, extra })
    }

    /// A reader of one log, line after line.
    pub fn lines(&self) -> LineRedactor<'_> {
        LineRedactor { redactor: self, in_key: false }
    }
}

/// Redacts the lines of one log, in order (a private key spans lines).
pub struct LineRedactor<'r> {
    redactor: &'r Redactor,
    in_key: bool,
}

impl LineRedactor<'_> {
    /// The line as it may be shown: invalid UTF-8 replaced, cut to
    /// [`MAX_LINE_BYTES`] (with `… [cut N bytes]`, N counting `more` bytes the
    /// caller did not keep), secrets replaced.
    pub fn line(&mut self, bytes: &[u8], more: usize) -> String {
        let keep = bytes.len().min(MAX_LINE_BYTES);
        let mut text = String::from_utf8_lossy(&bytes[..keep]).into_owned();
        // replacement characters are longer than the bytes they replace
        text.truncate(text.floor_char_boundary(MAX_LINE_BYTES));
        let trimmed = text.trim();
        if trimmed.starts_with("-----BEGIN") && trimmed.contains("PRIVATE KEY") {
            self.in_key = !trimmed.contains("-----END");
            text = REDACTED.to_string();
        } else if self.in_key {
            if trimmed.starts_with("-----END") {
                self.in_key = false;
            }
            text = REDACTED.to_string();
        } else {
            text = self.redact(&text);
        }
        let cut = bytes.len() - keep + more;
        if cut > 0 {
            text.push_str(&format!(" … [cut {cut} bytes]"));
        }
        text
    }

    fn redact(&self, text: &str) -> String {
        let replaced = self.redactor.builtin.replace_all(text, |c: &Captures| {
            let kept = c.name("bearer").or_else(|| c.name("key")).or_else(|| c.name("scheme"));
            let at = if c.name("scheme").is_some() { "@" } else { "" };
            format!("{}{REDACTED}{at}", kept.map_or("", |m| m.as_str()))
        });
        let mut out = replaced.into_owned();
        for re in &self.redactor.extra {
            if re.is_match(&out) {
                out = re.replace_all(&out, REDACTED).into_owned();
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact(line: &str) -> String {
        Redactor::new(&[]).unwrap().lines().line(line.as_bytes(), 0)
    }

    #[test]
    fn each_builtin_pattern_is_replaced() {
        let cases = [
            ("Authorization: Bearer eyJhbGciOi.abc", "Authorization: Bearer [REDACTED]"),
            ("curl -H 'authorization: bearer abc123=='", "curl -H 'authorization: bearer [REDACTED]'"),
            ("connecting with password=hunter2 user=bob", "connecting with password=[REDACTED] user=bob"),
            (r#"{"secret": "s3cr3t", "name": "x"}"#, r#"{"secret": "[REDACTED]", "name": "x"}"#),
            ("TOKEN=abc&next=1", "TOKEN=[REDACTED]&next=1"),
            ("api_key: 12345", "api_key: [REDACTED]"),
            ("using key AKIAIOSFODNN7EXAMPLE now", "using key [REDACTED] now"),
            ("dial postgres://app:pa55@db:5432/app failed", "dial postgres://[REDACTED]@db:5432/app failed"),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U ok",
                "jwt [REDACTED] ok",
            ),
        ];
        for (line, want) in cases {
            assert_eq!(redact(line), want, "{line}");
        }
    }

    #[test]
    fn ordinary_lines_are_kept() {
        for line in [
            "panic: runtime error: index out of range [5] with length 3",
            "listen tcp :8080: bind: address already in use",
            "token bucket refilled",
        ] {
            assert_eq!(redact(line), line);
        }
    }

    #[test]
    fn private_key_blocks_are_replaced_line_by_line() {
        let r = Redactor::new(&[]).unwrap();
        let mut lines = r.lines();
        let out: Vec<String> =
            ["key:", "-----BEGIN RSA PRIVATE KEY-----", "MIIEowIBAAKCAQEA", "-----END RSA PRIVATE KEY-----", "after"]
                .iter()
                .map(|l| lines.line(l.as_bytes(), 0))
                .collect();
        assert_eq!(out, ["key:", REDACTED, REDACTED, REDACTED, "after"]);
    }

    #[test]
    fn configured_patterns_are_added_and_bad_ones_named() {
        let r = Redactor::new(&["customer-[0-9]+".to_string()]).unwrap();
        assert_eq!(r.lines().line(b"order of customer-42 failed", 0), "order of [REDACTED] failed");
        assert_eq!(
            Redactor::new(&["(".to_string()]).unwrap_err().lines().next().unwrap(),
            "redact pattern `(`: regex parse error:"
        );
    }

    #[test]
    fn long_and_invalid_lines_are_cut_and_made_text() {
        let long = vec![b'a'; MAX_LINE_BYTES + 10];
        let out = Redactor::new(&[]).unwrap().lines().line(&long, 5);
        assert_eq!(out, format!("{} … [cut 15 bytes]", "a".repeat(MAX_LINE_BYTES)));
        assert_eq!(Redactor::new(&[]).unwrap().lines().line(b"bad \xff byte", 0), "bad \u{fffd} byte");
        let invalid = Redactor::new(&[]).unwrap().lines().line(&[0xff; MAX_LINE_BYTES], 0);
        assert_eq!(invalid.len(), MAX_LINE_BYTES - MAX_LINE_BYTES % 3);
    }
}
