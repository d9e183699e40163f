//! Rule text templates: `{N}` is argument N of a finding, `{{`/`}}` literal
//! braces. The sandbox bounds their placeholders; the report renders them.

/// A piece of a text template: literal text, or argument N for `{N}` (none
/// when N is not a number). `{{` and `}}` are literal braces.
enum Piece<'t> {
    Text(&'t str),
    Arg(Option<usize>),
}

fn pieces(template: &str) -> impl Iterator<Item = Piece<'_>> {
    let mut rest = template;
    std::iter::from_fn(move || {
        let at = rest.find(['{', '}']);
        let piece = match at {
            _ if rest.is_empty() => return None,
            None => Piece::Text(std::mem::take(&mut rest)),
            Some(0) if rest.starts_with("{{") || rest.starts_with("}}") => {
                let brace = &rest[..1];
                rest = &rest[2..];
                Piece::Text(brace)
            }
            Some(0) if rest.starts_with('}') => {
                rest = &rest[1..];
                Piece::Text("}")
            }
            Some(0) => {
                let inner = &rest[1..];
                let (n, after) = inner.split_once('}').unwrap_or((inner, ""));
                rest = after;
                Piece::Arg(n.parse().ok())
            }
            Some(at) => {
                let (text, after) = rest.split_at(at);
                rest = after;
                Piece::Text(text)
            }
        };
        Some(piece)
    })
}

/// Renders a text template: `{N}` is argument N, `{{`/`}}` literal braces.
pub fn render_template(template: &str, args: &[String]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    for piece in pieces(template) {
        out.push_str(match piece {
            Piece::Text(t) => t,
            Piece::Arg(n) => n.and_then(|i| args.get(i)).map_or("<none>", String::as_str),
        });
    }
    out
}

/// The argument indexes a template refers to.
pub fn placeholders(template: &str) -> impl Iterator<Item = usize> {
    pieces(template).filter_map(|p| match p {
        Piece::Arg(n) => n,
        Piece::Text(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_arguments_and_keep_escaped_braces() {
        let args = vec!["app".to_string(), "137".to_string()];
        assert_eq!(render_template("{0} exited {1} {{x}} {5}", &args), "app exited 137 {x} <none>");
        assert_eq!(render_template("a } {x}", &args), "a } <none>");
        assert_eq!(placeholders("{1} {{2}} {x} {0}").collect::<Vec<_>>(), [1, 0]);
    }
}
