//! Line-level editing of the TOML that `sluice init` writes: finding and removing one table
//! while leaving every other byte, comments included, as it was, so an edited configuration
//! still reads as init wrote it. Multi-line strings are followed, so text inside one is never
//! taken for a table header.

/// `text` without the table `section` and its sub-tables (`[section.x]`, `[[section.x]]`),
/// `note` (whole comment lines) standing where the first of them began. Everything else is left
/// byte for byte. Text without such a table is returned as is.
pub fn strip(text: &str, section: &str, note: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut scanner = Scanner::default();
    let mut skipping = false;
    for line in text.split_inclusive('\n') {
        // A header only counts outside multi-line strings.
        if !scanner.in_multiline() {
            if let Some(key) = table_header(line) {
                let was_skipping = skipping;
                skipping = key.first().is_some_and(|k| k == section);
                if skipping && !was_skipping {
                    out.push_str(note);
                }
            }
        }
        scanner.line(line);
        if !skipping {
            out.push_str(line);
        }
    }
    out
}

/// The string value of key `name` in table `section` (not a sub-table), when it stands on a
/// line of its own as init writes it (`file = "audit.jsonl"  # comment`).
pub fn setting(text: &str, section: &str, name: &str) -> Option<String> {
    let mut scanner = Scanner::default();
    let mut inside = false;
    for line in text.split_inclusive('\n') {
        if !scanner.in_multiline() {
            if let Some(key) = table_header(line) {
                inside = key.len() == 1 && key[0] == section;
            } else if inside {
                let Some((key, value)) = line.split_once('=') else {
                    continue;
                };
                if key.trim() == name {
                    return basic_string(value);
                }
            }
        }
        scanner.line(line);
    }
    None
}

/// The key a table header line opens (`[a."b".c]` gives `a`, `b`, `c`; array tables alike),
/// or `None` when the line is no table header.
fn table_header(line: &str) -> Option<Vec<String>> {
    let line = line.trim();
    let (rest, close) = match line.strip_prefix("[[") {
        Some(rest) => (rest, "]]"),
        None => (line.strip_prefix('[')?, "]"),
    };
    let mut key = Vec::new();
    let mut rest = rest.trim_start();
    loop {
        let (segment, after) = key_segment(rest)?;
        key.push(segment);
        rest = after.trim_start();
        if let Some(after) = rest.strip_prefix('.') {
            rest = after.trim_start();
            continue;
        }
        let tail = rest.strip_prefix(close)?.trim_start();
        return (tail.is_empty() || tail.starts_with('#')).then_some(key);
    }
}

/// One key segment at the start of `s`: bare, "basic" or 'literal'; the segment and the rest.
fn key_segment(s: &str) -> Option<(String, &str)> {
    if let Some(body) = s.strip_prefix('"') {
        let mut escaped = false;
        for (i, c) in body.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => return Some((body[..i].to_string(), &body[i + 1..])),
                _ => {}
            }
        }
        return None;
    }
    if let Some(body) = s.strip_prefix('\'') {
        let end = body.find('\'')?;
        return Some((body[..end].to_string(), &body[end + 1..]));
    }
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(s.len());
    (end > 0).then(|| (s[..end].to_string(), &s[end..]))
}

/// A TOML basic string value (`"..."`, maybe followed by a comment), unescaped. TOML basic
/// strings escape like JSON for everything a path holds.
fn basic_string(value: &str) -> Option<String> {
    let value = value.trim();
    let body = value.strip_prefix('"')?;
    let mut escaped = false;
    let end = body.char_indices().find_map(|(i, c)| match c {
        _ if escaped => {
            escaped = false;
            None
        }
        '\\' => {
            escaped = true;
            None
        }
        '"' => Some(i),
        _ => None,
    })?;
    let tail = body[end + 1..].trim_start();
    if !(tail.is_empty() || tail.starts_with('#')) {
        return None;
    }
    serde_json::from_str(&value[..end + 2]).ok()
}

/// Follows multi-line strings across lines, so that text inside one is never taken for a
/// table header.
#[derive(Default)]
struct Scanner {
    /// The delimiter of the multi-line string open at the end of the last line.
    open: Option<&'static str>,
}

impl Scanner {
    fn in_multiline(&self) -> bool {
        self.open.is_some()
    }

    /// Consumes one line.
    fn line(&mut self, line: &str) {
        let mut rest = line;
        loop {
            if let Some(delim) = self.open {
                match find_close(rest, delim) {
                    Some(after) => {
                        self.open = None;
                        rest = after;
                    }
                    None => return,
                }
            }
            // Outside any string: the next comment or string opening decides.
            let Some(i) = rest.find(['#', '"', '\'']) else {
                return;
            };
            let tail = &rest[i..];
            if tail.starts_with('#') {
                return;
            }
            for delim in ["\"\"\"", "'''"] {
                if let Some(after) = tail.strip_prefix(delim) {
                    self.open = Some(delim);
                    rest = after;
                    break;
                }
            }
            if self.open.is_some() {
                continue;
            }
            // A single-line string: skip past its end (an unterminated one ends the line).
            let quote = &tail[..1];
            match find_close(&tail[1..], if quote == "\"" { "\"" } else { "'" }) {
                Some(after) => rest = after,
                None => return,
            }
        }
    }
}

/// The text after the first `delim` in `s` that a backslash does not escape (in `"` strings
/// only; literal strings have no escapes).
fn find_close<'a>(s: &'a str, delim: &str) -> Option<&'a str> {
    let escapes = delim.starts_with('"');
    let mut i = 0;
    while i < s.len() {
        let tail = &s[i..];
        if escapes && tail.starts_with('\\') {
            i += 1 + tail[1..].chars().next().map_or(0, char::len_utf8);
            continue;
        }
        if tail.starts_with(delim) {
            // A closing `"""` may be followed by up to two more quotes that belong to the
            // string; the last three close it.
            let mut end = i + delim.len();
            let quote = &delim[..1];
            let mut extra = 0;
            while delim.len() == 3 && extra < 2 && s[end..].starts_with(quote) {
                end += 1;
                extra += 1;
            }
            return Some(&s[end..]);
        }
        i += tail.chars().next().map_or(1, char::len_utf8);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout `sluice init` writes around its `[audit]` table (abridged), comments and all.
    const INIT: &str = r#"# sluice configuration written by `sluice init`. Paths are relative to this file.

[gateway]
workers = 0                    # shards; 0 = one per core
pin_cores = true

# The control plane's admin listener.
# [admin]
# listen = "127.0.0.1:9432"

[identity]
issuer = "sluice"
revocation_file = "revocations.jsonl"  # revocations survive restarts

# The audit trail: one JSON line per connection, ...
# overflow = "block" makes the session wait, "drop" drops and counts, "fail" ends the session.
[audit]
file = "audit.jsonl"
max_file_bytes = 67108864      # rotate at 64 MiB into audit.jsonl.1, .2, ...
keep_files = 8
flush_interval = "1s"
overflow = "block"
# stdout = true
# syslog = true                 # to /dev/log, facility authpriv

[[resource]]
name = "bench"
kind = "postgres"

[role.reader.rules."*"]
read = "allow"          # SELECT, VALUES, TABLE, SHOW, FETCH, EXPLAIN without ANALYZE
"#;

    const NOTE: &str = "# removed\n";

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn strips_init_audit_table_and_nothing_else() {
        let stripped = strip(INIT, "audit", NOTE);
        let mut expected = table(INIT);
        assert!(expected.remove("audit").is_some());
        assert_eq!(table(&stripped), expected);
        // Byte for byte elsewhere: the table's lines, from its header to the next table, are
        // what went, and the note took their place.
        let start = INIT.find("[audit]\n").unwrap();
        let end = INIT.find("[[resource]]").unwrap();
        assert_eq!(
            stripped,
            format!("{}{NOTE}{}", &INIT[..start], &INIT[end..])
        );
    }

    #[test]
    fn strips_sub_tables_and_a_table_at_the_end() {
        let text = "[a]\nx = 1\n[ audit ]  # the trail\nfile = \"f\"\n[audit.x]\ny = 1\n\
                    [[audit.z]]\nw = 2\n[\"audit\".q]\nv = 3\n[auditor]\nu = 4\n[role.audit]\n\
                    t = 5\n# [audit]\n['audit'.r]\ns = 6";
        let stripped = strip(text, "audit", NOTE);
        assert_eq!(
            stripped,
            "[a]\nx = 1\n# removed\n[auditor]\nu = 4\n[role.audit]\nt = 5\n# [audit]\n# removed\n"
        );
        let t = table(&stripped);
        assert!(t.get("audit").is_none());
        assert_eq!(t["auditor"]["u"].as_integer(), Some(4));
        assert_eq!(t["role"]["audit"]["t"].as_integer(), Some(5));
    }

    #[test]
    fn headers_inside_multi_line_strings_are_text() {
        let text = "[a]\nx = \"\"\"\n[audit]\n\"\"\"\ny = '''\n[audit]\n'''\n\
                    z = \"\\\"\\\"\\\"\" # \"\"\"\nq = \"\"\"a\"\"\"\"\"\n[b]\nw = 1\n";
        assert_eq!(strip(text, "audit", NOTE), text);
        let t = table(text);
        assert_eq!(t["a"]["x"].as_str(), Some("[audit]\n"));
        assert_eq!(t["a"]["q"].as_str(), Some("a\"\""));
        assert_eq!(t["b"]["w"].as_integer(), Some(1));
        // And a real table after such a string still goes.
        let text = "[a]\nx = \"\"\"\n[b]\n\"\"\"\n[audit]\nfile = \"f\"\n";
        assert_eq!(
            strip(text, "audit", NOTE),
            "[a]\nx = \"\"\"\n[b]\n\"\"\"\n# removed\n"
        );
    }

    #[test]
    fn text_without_the_table_is_unchanged() {
        let text = "[gateway]\nworkers = 1\n# [audit]\n# file = \"x\"\n";
        assert_eq!(strip(text, "audit", NOTE), text);
        assert_eq!(strip("", "audit", NOTE), "");
    }

    #[test]
    fn reads_a_string_setting_of_the_table() {
        assert_eq!(
            setting(INIT, "audit", "file").as_deref(),
            Some("audit.jsonl")
        );
        assert_eq!(setting(INIT, "audit", "overflow").as_deref(), Some("block"));
        assert_eq!(setting(INIT, "audit", "keep_files"), None, "not a string");
        assert_eq!(setting(INIT, "audit", "stdout"), None, "commented out");
        assert_eq!(setting(INIT, "identity", "file"), None);
        let text = "[audit.x]\nfile = \"no\"\n[audit]\nfile = \"a\\\\b \\\"c\\\".jsonl\" # x\n";
        assert_eq!(
            setting(text, "audit", "file").as_deref(),
            Some("a\\b \"c\".jsonl")
        );
        assert_eq!(setting("[audit]\nfile = \"a\" b\n", "audit", "file"), None);
    }
}
