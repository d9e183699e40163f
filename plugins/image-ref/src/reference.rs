//! The image reference grammar of distribution/reference, as the kubelet
//! parses `image:` (`ParseNormalizedNamed`), with a precise message for the
//! first thing that is wrong.
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [domain "/"] path-component ["/" path-component]*
//! domain     := host [":" port-number]
//! path-component := [a-z0-9]+ (separator [a-z0-9]+)*     separator := "." | "_" | "__" | "-"+
//! tag        := [\w][\w.-]{0,127}
//! digest     := algorithm ":" hex                          (sha256: 64, sha384: 96, sha512: 128 lowercase hex)
//! ```

/// What is wrong with a reference, and how to write it.
#[derive(Debug, PartialEq, Eq)]
pub struct Problem {
    pub what: String,
    pub fix: String,
}

fn problem(what: impl Into<String>, fix: impl Into<String>) -> Problem {
    Problem { what: what.into(), fix: fix.into() }
}

const FORM: &str = "Write the image as [registry[:port]/]repository[:tag][@sha256:<64 hex digits>].";

/// The longest name (registry and repository) distribution accepts.
const NAME_MAX: usize = 255;
const TAG_MAX: usize = 128;

/// Checks an image reference; `Err` says what is wrong with it.
pub fn check(image: &str) -> Result<(), Problem> {
    if image.is_empty() {
        return Err(problem("the image is empty", FORM));
    }
    if image.chars().any(char::is_whitespace) {
        return Err(problem(
            "it contains whitespace",
            format!("Remove the spaces: `{}`.", image.split_whitespace().collect::<String>()),
        ));
    }
    if let Some((scheme, rest)) = image.split_once("://") {
        return Err(problem(
            format!("it starts with the URL scheme `{scheme}://`; image references have none"),
            format!("Drop the scheme: `{rest}`."),
        ));
    }
    let (name_tag, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        check_digest(d)?;
    }
    let (name, tag) = split_tag(name_tag)?;
    if let Some(t) = tag {
        check_tag(t)?;
    }
    check_name(name)
}

/// Splits the tag off the last path component; two tags are an error.
fn split_tag(name_tag: &str) -> Result<(&str, Option<&str>), Problem> {
    let slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    let last = &name_tag[slash..];
    let mut parts = last.split(':');
    let repo = parts.next().unwrap_or_default();
    let tags: Vec<&str> = parts.collect();
    match tags.as_slice() {
        [] => Ok((name_tag, None)),
        [tag] => Ok((&name_tag[..name_tag.len() - tag.len() - 1], Some(tag))),
        _ => Err(problem(
            format!(
                "it has {} tags ({}); an image has at most one `:tag`",
                tags.len(),
                tags.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")
            ),
            format!("Keep one tag, e.g. `{}:{}`.", &name_tag[..slash + repo.len()], tags.join("-")),
        )),
    }
}

fn check_tag(tag: &str) -> Result<(), Problem> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    if tag.is_empty() {
        return Err(problem("the tag after `:` is empty", "Give a tag after `:`, or drop the `:`."));
    }
    if let Some(bad) = tag.chars().find(|&c| !(word(c) || c == '.' || c == '-')) {
        return Err(problem(
            format!("the tag `{tag}` contains `{bad}`; a tag has only letters, digits, `_`, `.` and `-`"),
            FORM,
        ));
    }
    if !tag.starts_with(word) {
        return Err(problem(format!("the tag `{tag}` must start with a letter, a digit or `_`"), FORM));
    }
    if tag.len() > TAG_MAX {
        return Err(problem(format!("the tag is {} characters long; the limit is {TAG_MAX}", tag.len()), FORM));
    }
    Ok(())
}

fn check_digest(digest: &str) -> Result<(), Problem> {
    let fix = "Write the digest as `@sha256:` and the 64 lowercase hex digits the registry shows.";
    if digest.contains('@') {
        return Err(problem("it has more than one `@digest`", fix));
    }
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(problem(format!("the digest `{digest}` has no algorithm (`sha256:`)"), fix));
    };
    let want = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        other => {
            return Err(problem(
                format!("the digest algorithm `{other}` is not supported (sha256, sha384 or sha512)"),
                fix,
            ));
        }
    };
    if let Some(bad) = hex.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
        return Err(problem(format!("the {algorithm} digest contains `{bad}`; it must be lowercase hex digits"), fix));
    }
    if hex.len() != want {
        return Err(problem(format!("the {algorithm} digest has {} hex digits; it needs {want}", hex.len()), fix));
    }
    Ok(())
}

/// As docker's `splitDockerDomain`: the first component is a registry if it
/// has a `.` or a `:`, is `localhost`, or has uppercase letters.
fn split_domain(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':']) || first == "localhost" || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

fn check_name(name: &str) -> Result<(), Problem> {
    if name.len() > NAME_MAX {
        return Err(problem(format!("the name is {} characters long; the limit is {NAME_MAX}", name.len()), FORM));
    }
    let (domain, path) = split_domain(name);
    if let Some(d) = domain {
        check_domain(d)?;
    }
    if path.len() == 64 && path.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(problem(
            format!("`{path}` is a 64-digit image ID, not a repository name"),
            "Name the repository, and pin the image with `@sha256:<digest>`.",
        ));
    }
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        // `Team/App`: `Team` reads as a registry only because of its uppercase letters
        let named_registry = domain.is_some_and(|d| d.contains(['.', ':']) || d == "localhost");
        let repository = if named_registry { path } else { name };
        let lower = name.replacen(repository, &repository.to_ascii_lowercase(), 1);
        return Err(problem(
            format!("the repository `{repository}` has uppercase letters; repository names are lowercase"),
            format!("Use `{lower}` (and check the registry has it)."),
        ));
    }
    for component in path.split('/') {
        check_component(path, component)?;
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<(), Problem> {
    let (host, port) = match domain.strip_prefix('[') {
        // [IPv6]:port
        Some(v6) => {
            let invalid = || problem(format!("the registry `{domain}` is not a valid [IPv6]:port"), FORM);
            let (addr, rest) = v6.split_once(']').ok_or_else(invalid)?;
            if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
                return Err(invalid());
            }
            match rest {
                "" => (None, None),
                _ => (None, Some(rest.strip_prefix(':').ok_or_else(invalid)?)),
            }
        }
        None => match domain.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(domain), None),
        },
    };
    if let Some(port) = port
        && (port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()))
    {
        let what = if port.is_empty() {
            format!("the registry `{domain}` has an empty port after `:`")
        } else {
            format!("the port `{port}` of registry `{domain}` is not a number")
        };
        return Err(problem(
            what,
            "Write the registry as host[:port] with a numeric port, e.g. `registry.example.com:5000`.",
        ));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if let Some(host) = host
        && !host.split('.').all(label_ok)
    {
        return Err(problem(
            format!(
                "the registry host `{host}` is not a valid host name (letters, digits and inner `-`, between dots)"
            ),
            FORM,
        ));
    }
    Ok(())
}

/// `[a-z0-9]+ (separator [a-z0-9]+)*` with separator `.`, `_`, `__` or one or more `-`.
fn check_component(path: &str, component: &str) -> Result<(), Problem> {
    let fix = "Path components are lowercase letters and digits, joined by `.`, `_`, `__` or dashes.";
    if component.is_empty() {
        return Err(problem(
            format!("the repository `{path}` has an empty path component (a leading, trailing or double `/`)"),
            fix,
        ));
    }
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if let Some(bad) = component.chars().find(|&c| !(alnum(c) || matches!(c, '.' | '_' | '-'))) {
        return Err(problem(format!("the repository `{path}` contains `{bad}`"), fix));
    }
    if !component.starts_with(alnum) || !component.ends_with(alnum) {
        return Err(problem(
            format!("the path component `{component}` must start and end with a letter or a digit"),
            fix,
        ));
    }
    for separator in component.split(alnum).filter(|s| !s.is_empty()) {
        let ok = matches!(separator, "." | "_" | "__") || separator.chars().all(|c| c == '-');
        if !ok {
            return Err(problem(format!("the path component `{component}` has the separator `{separator}`"), fix));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn what(image: &str) -> String {
        check(image).err().map(|p| p.what).unwrap_or_default()
    }

    #[test]
    fn valid_references_pass() {
        for image in [
            "nginx",
            "nginx:1.25",
            "library/nginx:1.25-alpine",
            "registry.example.com:5000/team/app:v1.2.3_rc.1",
            "localhost/app",
            "localhost:5000/app",
            "MyRegistry/app",
            "[::1]:5000/app:1",
            "a__b/c-d/e--f.g_h:TAG",
            &format!("nginx@sha256:{}", "a".repeat(64)),
            &format!("ghcr.io/org/app:1.0@sha256:{}", "0".repeat(64)),
        ] {
            assert_eq!(check(image), Ok(()), "{image}");
        }
    }

    #[test]
    fn uppercase_repository() {
        let p = check("MyApp:1.0").unwrap_err();
        assert_eq!(p.what, "the repository `MyApp` has uppercase letters; repository names are lowercase");
        assert_eq!(p.fix, "Use `myapp` (and check the registry has it).");
        assert!(what("registry.io/Team/App").contains("`Team/App` has uppercase"));
        let p = check("Shop/Web:1.0").unwrap_err();
        assert_eq!(
            (p.what.contains("`Shop/Web` has"), p.fix.as_str()),
            (true, "Use `shop/web` (and check the registry has it).")
        );
    }

    #[test]
    fn double_tag() {
        let p = check("nginx:1.25:alpine").unwrap_err();
        assert_eq!(p.what, "it has 2 tags (`1.25`, `alpine`); an image has at most one `:tag`");
        assert_eq!(p.fix, "Keep one tag, e.g. `nginx:1.25-alpine`.");
        assert!(what("reg:5000/a:1:2").contains("2 tags"));
    }

    #[test]
    fn bad_digests() {
        assert_eq!(what("nginx@sha256:abc"), "the sha256 digest has 3 hex digits; it needs 64");
        assert_eq!(
            what(&format!("nginx@sha256:{}", "A".repeat(64))),
            "the sha256 digest contains `A`; it must be lowercase hex digits"
        );
        assert_eq!(what("nginx@md5:abc"), "the digest algorithm `md5` is not supported (sha256, sha384 or sha512)");
        assert_eq!(what("nginx@abc"), "the digest `abc` has no algorithm (`sha256:`)");
    }

    #[test]
    fn bad_ports_and_hosts() {
        assert_eq!(what("registry.io:port/app"), "the port `port` of registry `registry.io:port` is not a number");
        assert_eq!(what("registry.io:/app"), "the registry `registry.io:` has an empty port after `:`");
        assert!(what("my_registry.io/app").contains("not a valid host name"));
    }

    #[test]
    fn other_mistakes() {
        assert_eq!(what(""), "the image is empty");
        assert_eq!(what("nginx :1"), "it contains whitespace");
        assert!(what("https://ghcr.io/a/b").contains("URL scheme `https://`"));
        assert_eq!(what("nginx:"), "the tag after `:` is empty");
        assert!(what("nginx:-x").contains("must start with"));
        assert!(what("nginx:1!").contains("contains `!`"));
        assert!(what(&format!("nginx:{}", "a".repeat(129))).contains("limit is 128"));
        assert!(what("a//b").contains("empty path component"));
        assert!(what("-app").contains("must start and end"));
        assert!(what("a___b").contains("separator `___`"));
        assert!(what("a$b").contains("contains `$`"));
        assert!(what(&"f".repeat(64)).contains("64-digit image ID"));
        assert!(what(&"a".repeat(256)).contains("limit is 255"));
    }
}
