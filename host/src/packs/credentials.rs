//! Registry credentials where Docker, podman and skopeo keep them, and
//! `k8srule pack login/logout` writing them back in the same format.
//!
//! Looked up in this order (the first file with credentials for the registry wins):
//! `--registry-config FILE` alone when given; else the Docker CLI's
//! `$DOCKER_CONFIG/config.json` (`~/.docker/config.json`), then the
//! containers' `auth.json` (`$REGISTRY_AUTH_FILE`,
//! `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.config/containers/auth.json`).
//! In one file, `credHelpers` for the registry, then `auths`, then
//! `credsStore`; a helper is run as the Docker CLI runs it
//! (`docker-credential-<name> get`, the server on stdin, JSON on stdout).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ***)", self.username)
    }
}

impl Credentials {
    /// The value of a `Basic` Authorization header.
    pub fn basic(&self) -> String {
        format!("Basic {}", STANDARD.encode(format!("{}:{}", self.username, self.secret)))
    }
}

/// Saved registry credentials that cannot be read, or a helper that fails.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct CredentialsError {
    /// The file or helper.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

/// The largest credentials file and helper answer read.
const MAX_FILE: u64 = 4 << 20;
/// How long a credential helper may take (one that asks the user waits for them).
const HELPER_TIMEOUT: Duration = Duration::from_secs(60);

/// The files credentials are looked up in, in order.
pub fn files(registry_config: Option<&Path>) -> Vec<PathBuf> {
    if let Some(f) = registry_config {
        return vec![f.to_path_buf()];
    }
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let home = env("HOME");
    let mut files = Vec::new();
    files.extend(
        env("DOCKER_CONFIG").or_else(|| home.as_ref().map(|h| h.join(".docker"))).map(|d| d.join("config.json")),
    );
    files.extend(env("REGISTRY_AUTH_FILE"));
    files.extend(env("XDG_RUNTIME_DIR").map(|d| d.join("containers/auth.json")));
    files.extend(home.map(|h| h.join(".config/containers/auth.json")));
    files
}

/// The name Docker files a registry under: Docker Hub is `https://index.docker.io/v1/`.
fn server_url(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "https://index.docker.io/v1/",
        r => r,
    }
}

/// The registry host a key of `auths` names (`https://host/v1/`, `host`,
/// or podman's `host/namespace`), and the repository prefix, if any.
fn key_host(key: &str) -> (&str, &str) {
    let key = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let (host, path) = key.split_once('/').unwrap_or((key, ""));
    let host = if host == "index.docker.io" || host == "registry-1.docker.io" { "docker.io" } else { host };
    (host, path.trim_end_matches('/'))
}

fn read_json(path: &Path) -> Result<Option<serde_json::Value>, CredentialsError> {
    let bad = |message: String| CredentialsError { path: path.display().to_string(), message };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(e.to_string())),
    };
    let mut text = Vec::new();
    file.take(MAX_FILE + 1).read_to_end(&mut text).map_err(|e| bad(e.to_string()))?;
    if text.len() as u64 > MAX_FILE {
        return Err(bad(format!("larger than {MAX_FILE} bytes")));
    }
    let value: serde_json::Value = serde_json::from_slice(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    if !value.is_object() {
        return Err(bad("not a JSON object".into()));
    }
    Ok(Some(value))
}

/// The credentials for `registry` (`host[:port]`) and `repository`, if any file names them.
pub fn lookup(
    registry: &str,
    repository: &str,
    registry_config: Option<&Path>,
) -> Result<Option<Credentials>, CredentialsError> {
    let host = key_host(registry).0;
    for file in files(registry_config) {
        let Some(config) = read_json(&file)? else { continue };
        let bad = |message: String| CredentialsError { path: file.display().to_string(), message };
        if let Some(helpers) = config["credHelpers"].as_object()
            && let Some((_, helper)) = helpers.iter().find(|(k, _)| key_host(k).0 == host)
        {
            let helper = helper.as_str().ok_or_else(|| bad(format!("credHelpers.{host} is not a string")))?;
            if let Some(found) = helper_get(helper, registry)? {
                return Ok(Some(found));
            }
            continue;
        }
        if let Some(auths) = config["auths"].as_object() {
            // the most specific key: podman's `host/namespace/repo` before `host`
            let best = auths
                .iter()
                .filter(|(k, _)| {
                    let (h, path) = key_host(k);
                    h == host
                        && (path.is_empty()
                            || path == "v1"
                            || repository == path
                            || repository.strip_prefix(path).is_some_and(|r| r.starts_with('/')))
                })
                .max_by_key(|(k, _)| k.len());
            if let Some((key, entry)) = best
                && let Some(auth) = entry["auth"].as_str().filter(|a| !a.is_empty())
            {
                let decoded = STANDARD
                    .decode(auth)
                    .ok()
                    .and_then(|d| String::from_utf8(d).ok())
                    .ok_or_else(|| bad(format!("auths.{key}.auth is not base64 of `user:password`")))?;
                let (username, secret) = decoded
                    .split_once(':')
                    .ok_or_else(|| bad(format!("auths.{key}.auth is not base64 of `user:password`")))?;
                return Ok(Some(Credentials { username: username.into(), secret: secret.into() }));
            }
        }
        if let Some(store) = config["credsStore"].as_str().filter(|s| !s.is_empty())
            && let Some(found) = helper_get(store, registry)?
        {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// Runs `docker-credential-<helper> <action>` with `input` on stdin; its stdout.
fn helper(helper: &str, action: &str, input: &[u8]) -> Result<(bool, String), CredentialsError> {
    let program = format!("docker-credential-{helper}");
    let bad = |message: String| CredentialsError { path: program.clone(), message };
    if helper.is_empty() || !helper.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        return Err(bad("not a credential helper name".into()));
    }
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| bad(format!("cannot run it: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // a helper that does not read its input fails below, by its answer or its time
        let _ = stdin.write_all(input);
    }
    let deadline = Instant::now() + HELPER_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(bad(format!("`{action}` did not answer within {} s", HELPER_TIMEOUT.as_secs())));
            }
            Err(e) => return Err(bad(e.to_string())),
        }
    };
    // what a helper that exited wrote fits in its pipes
    let read = |pipe: Option<&mut dyn Read>| {
        let mut text = Vec::new();
        if let Some(p) = pipe {
            let _ = p.take(MAX_FILE).read_to_end(&mut text);
        }
        String::from_utf8_lossy(&text).into_owned()
    };
    let stdout = read(child.stdout.as_mut().map(|p| p as &mut dyn Read));
    if !status.success() && !stdout.contains("credentials not found") {
        let stderr = read(child.stderr.as_mut().map(|p| p as &mut dyn Read));
        let said = if stdout.trim().is_empty() { stderr.trim() } else { stdout.trim() };
        return Err(bad(format!("`{action}` failed ({status}): {}", said.chars().take(200).collect::<String>())));
    }
    Ok((status.success(), stdout))
}

fn helper_get(name: &str, registry: &str) -> Result<Option<Credentials>, CredentialsError> {
    let (found, stdout) = helper(name, "get", server_url(registry).as_bytes())?;
    if !found {
        return Ok(None);
    }
    let bad = |message: String| CredentialsError { path: format!("docker-credential-{name}"), message };
    let answer: serde_json::Value =
        serde_json::from_str(&stdout).map_err(|e| bad(format!("`get` did not print JSON: {e}")))?;
    let field = |k: &str| answer[k].as_str().map(str::to_string);
    match (field("Username"), field("Secret")) {
        (Some(username), Some(secret)) if username != "<token>" => Ok(Some(Credentials { username, secret })),
        (Some(_), Some(_)) => Err(bad("`get` returned an identity token, which k8srule does not use".into())),
        _ => Err(bad("`get` printed no Username and Secret".into())),
    }
}

/// The file `login` and `logout` write: `--registry-config`, else the Docker CLI's.
pub fn login_file(registry_config: Option<&Path>) -> Option<PathBuf> {
    files(registry_config).into_iter().next()
}

/// Saves credentials as `docker login` does: with the file's `credHelpers`
/// entry or `credsStore` if it has one, else base64 in `auths` (file mode 0600).
/// Returns where they went.
pub fn store(file: &Path, registry: &str, credentials: &Credentials) -> Result<String, CredentialsError> {
    let mut config = read_json(file)?.unwrap_or_else(|| serde_json::json!({}));
    if let Some(name) = configured_helper(&config, registry) {
        let input = serde_json::json!({
            "ServerURL": server_url(registry), "Username": credentials.username, "Secret": credentials.secret,
        });
        helper(&name, "store", input.to_string().as_bytes())?;
        return Ok(format!("docker-credential-{name}"));
    }
    let auth = STANDARD.encode(format!("{}:{}", credentials.username, credentials.secret));
    config["auths"][server_url(registry)] = serde_json::json!({ "auth": auth });
    write_json(file, &config)?;
    Ok(file.display().to_string())
}

/// Removes a registry's credentials; false if there were none.
pub fn erase(file: &Path, registry: &str) -> Result<bool, CredentialsError> {
    let Some(mut config) = read_json(file)? else { return Ok(false) };
    let mut removed = false;
    if let Some(auths) = config["auths"].as_object_mut() {
        let before = auths.len();
        auths.retain(|k, _| key_host(k).0 != key_host(registry).0);
        removed = auths.len() != before;
    }
    if let Some(name) = configured_helper(&config, registry) {
        let (found, _) = helper(&name, "erase", server_url(registry).as_bytes())?;
        removed |= found;
    }
    write_json(file, &config)?;
    Ok(removed)
}

fn configured_helper(config: &serde_json::Value, registry: &str) -> Option<String> {
    let host = key_host(registry).0;
    let per_registry = config["credHelpers"].as_object().and_then(|h| h.iter().find(|(k, _)| key_host(k).0 == host));
    per_registry
        .map(|(_, v)| v)
        .or(Some(&config["credsStore"]))
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn write_json(file: &Path, config: &serde_json::Value) -> Result<(), CredentialsError> {
    let bad = |e: std::io::Error| CredentialsError { path: file.display().to_string(), message: e.to_string() };
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(bad)?;
    }
    let text = serde_json::to_vec_pretty(config).unwrap_or_default();
    let tmp = file.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&tmp).map_err(bad)?;
    f.write_all(&text).map_err(bad)?;
    drop(f);
    std::fs::rename(&tmp, file).map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_their_registry() {
        assert_eq!(key_host("https://index.docker.io/v1/"), ("docker.io", "v1"));
        assert_eq!(key_host("quay.io/team/app"), ("quay.io", "team/app"));
        assert_eq!(key_host("http://127.0.0.1:5000"), ("127.0.0.1:5000", ""));
        assert_eq!(server_url("docker.io"), "https://index.docker.io/v1/");
    }

    #[test]
    fn auths_match_the_most_specific_key_and_store_round_trips() {
        let tmp = tempfile_dir();
        let file = tmp.join("auth.json");
        let enc = |s: &str| STANDARD.encode(s);
        std::fs::write(
            &file,
            serde_json::json!({"auths": {
                "quay.io": {"auth": enc("all:one")},
                "quay.io/team": {"auth": enc("team:two")},
                "quay.io/teamx": {"auth": enc("other:three")},
            }})
            .to_string(),
        )
        .unwrap();
        let get = |repo: &str| lookup("quay.io", repo, Some(&file)).unwrap().map(|c| c.username);
        assert_eq!(get("team/app").as_deref(), Some("team"));
        assert_eq!(get("teamy/app").as_deref(), Some("all"));
        assert_eq!(lookup("ghcr.io", "a", Some(&file)).unwrap(), None);
        let c = Credentials { username: "u".into(), secret: "p:w".into() };
        store(&file, "ghcr.io", &c).unwrap();
        assert_eq!(lookup("ghcr.io", "a", Some(&file)).unwrap(), Some(c));
        assert!(get("team/app").is_some(), "other entries are kept");
        assert!(erase(&file, "ghcr.io").unwrap());
        assert_eq!(lookup("ghcr.io", "a", Some(&file)).unwrap(), None);
        std::fs::write(&file, r#"{"auths": {"quay.io": {"auth": "!!"}}}"#).unwrap();
        let e = lookup("quay.io", "a", Some(&file)).unwrap_err().to_string();
        assert!(e.contains("auth.json: auths.quay.io.auth is not base64"), "{e}");
        let _ = std::fs::remove_dir_all(tmp);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("k8srule-credentials-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
