//! Checks of the identity providers (`[[identity.provider]]`) and their claim rules: names and
//! issuers, where their keys come from, accepted algorithms, and that every rule parses and
//! grants only roles and resources that exist, for no longer than `identity.max_ttl`.

use std::collections::BTreeSet;
use std::time::Duration;

use super::model::Config;
use super::providers::ProviderSection;
use super::validate::Problems;
use crate::http_client::Url;
use crate::identity::oidc::{algorithm_error, Condition};

pub(super) fn check(config: &Config, p: &mut Problems) {
    let mut names = BTreeSet::new();
    let mut issuers = BTreeSet::new();
    for (i, pr) in config.identity.providers.iter().enumerate() {
        let key = format!("identity.provider[{i}]");
        if pr.name.trim().is_empty() {
            p.add(format!("{key}.name"), "must not be empty");
        } else if !names.insert(pr.name.as_str()) {
            p.add(
                format!("{key}.name"),
                format!("`{}` is defined twice", pr.name),
            );
        }
        if pr.issuer.trim().is_empty() {
            p.add(format!("{key}.issuer"), "must not be empty");
        } else if !issuers.insert(pr.issuer.as_str()) {
            p.add(
                format!("{key}.issuer"),
                format!("`{}` is the issuer of another provider too", pr.issuer),
            );
        }
        if pr.audience.trim().is_empty() {
            p.add(format!("{key}.audience"), "must not be empty");
        }
        keys(&key, pr, p);
        if pr.algorithms.is_empty() {
            p.add(
                format!("{key}.algorithms"),
                "must name at least one algorithm",
            );
        }
        for (j, alg) in pr.algorithms.iter().enumerate() {
            if let Some(why) = algorithm_error(alg) {
                p.add(format!("{key}.algorithms[{j}]"), why);
            }
        }
        if pr.subject_claim.is_empty() || pr.subject_claim.split('.').any(str::is_empty) {
            p.add(format!("{key}.subject_claim"), "must be a claim name");
        }
        if pr.max_token_lifetime.is_zero() {
            p.add(
                format!("{key}.max_token_lifetime"),
                "must be greater than zero",
            );
        }
        mappings(config, &key, pr, p);
    }
}

fn keys(key: &str, pr: &ProviderSection, p: &mut Problems) {
    match (&pr.jwks_file, &pr.jwks_url) {
        (Some(file), None) => {
            if !file.is_file() {
                p.add(
                    format!("{key}.jwks_file"),
                    format!("{} does not exist or is not a file", file.display()),
                );
            }
            if pr.jwks_ca_file.is_some() {
                p.add(
                    format!("{key}.jwks_ca_file"),
                    "is only used with an https:// jwks_url",
                );
            }
        }
        (None, Some(url)) => match Url::parse(url) {
            Err(e) => p.add(format!("{key}.jwks_url"), e.to_string()),
            Ok(u) if !u.https && !u.is_loopback_host() => p.add(
                format!("{key}.jwks_url"),
                "http:// is only allowed on a loopback address; use https://",
            ),
            Ok(u) => {
                if let Some(ca) = &pr.jwks_ca_file {
                    if !u.https {
                        p.add(
                            format!("{key}.jwks_ca_file"),
                            "is only used with an https:// jwks_url",
                        );
                    } else if !ca.is_file() {
                        p.add(
                            format!("{key}.jwks_ca_file"),
                            format!("{} does not exist or is not a file", ca.display()),
                        );
                    }
                }
            }
        },
        _ => p.add(key.to_owned(), "give exactly one of jwks_file and jwks_url"),
    }
    if pr.jwks_refresh < Duration::from_secs(1) {
        p.add(format!("{key}.jwks_refresh"), "must be at least 1s");
    }
}

fn mappings(config: &Config, key: &str, pr: &ProviderSection, p: &mut Problems) {
    if pr.mappings.is_empty() {
        p.add(
            key.to_owned(),
            "has no [[identity.provider.map]] rule, so none of its tokens could be exchanged",
        );
    }
    for (j, m) in pr.mappings.iter().enumerate() {
        let key = format!("{key}.map[{j}]");
        if let Err(e) = Condition::parse(&m.when) {
            p.add(format!("{key}.when"), e.to_string());
        }
        if m.roles.is_empty() {
            p.add(format!("{key}.roles"), "must name at least one role");
        }
        for r in &m.roles {
            if !config.roles.contains_key(r) {
                p.add(format!("{key}.roles"), format!("names unknown role `{r}`"));
            }
        }
        if m.resources.is_empty() {
            p.add(
                format!("{key}.resources"),
                "must name at least one resource, or \"*\"",
            );
        }
        for r in &m.resources {
            if r != "*" && !config.resources.iter().any(|res| &res.name == r) {
                p.add(
                    format!("{key}.resources"),
                    format!("names unknown resource `{r}`"),
                );
            }
        }
        match m.ttl {
            Some(ttl) if ttl.is_zero() => p.add(format!("{key}.ttl"), "must be greater than zero"),
            Some(ttl) if ttl > config.identity.max_ttl => {
                p.add(format!("{key}.ttl"), "must not exceed identity.max_ttl")
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::fixture::{resource, HEAD};

    fn problems(providers: &str) -> Vec<String> {
        let text = [
            HEAD,
            "max_ttl = \"1h\"\n",
            &resource("orders"),
            "\n[role.reader]\nresources = [\"orders\"]\n",
            providers,
        ]
        .concat();
        let config: Config = toml::from_str(&text).unwrap();
        let mut p = Problems(Vec::new());
        check(&config, &mut p);
        p.0.iter().map(ToString::to_string).collect()
    }

    fn assert_has(problems: &[String], needle: &str) {
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "no problem contains {needle:?}: {problems:#?}"
        );
    }

    /// A provider with a JWKS URL and one rule; `extra` goes into the provider table, `map`
    /// into its rule.
    fn provider(name: &str, issuer: &str, extra: &str, map: &str) -> String {
        format!(
            r#"
[[identity.provider]]
name = "{name}"
issuer = "{issuer}"
audience = "sluice"
{extra}
[[identity.provider.map]]
when = 'repository == "acme/api"'
roles = ["reader"]
resources = ["orders"]
{map}
"#
        )
    }

    const URL: &str = "jwks_url = \"https://token.actions.githubusercontent.com/.well-known/jwks\"";

    #[test]
    fn a_good_provider_passes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("jwks.json");
        std::fs::write(&file, "{}").unwrap();
        let from_file = format!("jwks_file = \"{}\"", file.display());
        let found = problems(
            &[
                provider("github", "https://gh", URL, "ttl = \"1h\""),
                provider(
                    "local",
                    "https://local",
                    "jwks_url = \"http://127.0.0.1:8080/jwks\"",
                    "",
                ),
                provider("file", "https://file", &from_file, "")
                    .replace("resources = [\"orders\"]", "resources = [\"*\"]"),
            ]
            .concat(),
        );
        assert!(found.is_empty(), "{found:#?}");
    }

    #[test]
    fn names_and_issuers_are_unique_and_present() {
        let found = problems(
            &[
                provider("a", "https://x", URL, ""),
                provider("a", "https://x", URL, ""),
                provider("", "", URL, ""),
            ]
            .concat(),
        );
        assert_has(&found, "identity.provider[1].name: `a` is defined twice");
        assert_has(
            &found,
            "identity.provider[1].issuer: `https://x` is the issuer of another",
        );
        assert_has(&found, "identity.provider[2].name: must not be empty");
        assert_has(&found, "identity.provider[2].issuer: must not be empty");
    }

    #[test]
    fn keys_come_from_exactly_one_acceptable_place() {
        let both = format!("{URL}\njwks_file = \"/nonexistent/jwks.json\"");
        assert_has(
            &problems(&provider("p", "i", &both, "")),
            "give exactly one of jwks_file and jwks_url",
        );
        assert_has(&problems(&provider("p", "i", "", "")), "give exactly one");
        let missing = "jwks_file = \"/nonexistent/jwks.json\"";
        assert_has(
            &problems(&provider("p", "i", missing, "")),
            "jwks_file: /nonexistent/jwks.json does not exist",
        );
        for (url, needle) in [
            (
                "http://192.0.2.1/jwks",
                "only allowed on a loopback address",
            ),
            (
                "http://idp.example/jwks",
                "only allowed on a loopback address",
            ),
            (
                "ftp://idp.example/jwks",
                "must start with http:// or https://",
            ),
            ("https://u@idp.example/", "user information"),
        ] {
            let extra = format!("jwks_url = \"{url}\"");
            assert_has(&problems(&provider("p", "i", &extra, "")), needle);
        }
        let ca = format!("{URL}\njwks_ca_file = \"/nonexistent/ca.pem\"");
        assert_has(
            &problems(&provider("p", "i", &ca, "")),
            "jwks_ca_file: /nonexistent/ca.pem does not exist",
        );
        let ca_on_http = "jwks_url = \"http://127.0.0.1:1/\"\njwks_ca_file = \"/x.pem\"";
        assert_has(
            &problems(&provider("p", "i", ca_on_http, "")),
            "only used with an https://",
        );
        let fast = format!("{URL}\njwks_refresh = \"500ms\"");
        assert_has(
            &problems(&provider("p", "i", &fast, "")),
            "jwks_refresh: must be at least 1s",
        );
    }

    #[test]
    fn algorithms_are_known_public_key_algorithms() {
        let algs = format!("{URL}\nalgorithms = [\"RS256\", \"HS256\", \"none\", \"ES512\"]");
        let found = problems(&provider("p", "i", &algs, ""));
        assert_has(&found, "algorithms[1]: `HS256` is never accepted");
        assert_has(&found, "algorithms[2]: `none` is never accepted");
        assert_has(
            &found,
            "algorithms[3]: `ES512` is not a supported algorithm",
        );
        assert!(
            !found.iter().any(|p| p.contains("algorithms[0]")),
            "{found:#?}"
        );
        let none = format!("{URL}\nalgorithms = []");
        assert_has(
            &problems(&provider("p", "i", &none, "")),
            "must name at least one algorithm",
        );
    }

    #[test]
    fn rules_parse_and_grant_what_exists() {
        let bad_when = provider("p", "i", URL, "").replace(
            r#"when = 'repository == "acme/api"'"#,
            r#"when = 'repository == "acme/api" and'"#,
        );
        assert_has(
            &problems(&bad_when),
            "identity.provider[0].map[0].when: at column 29: expected a claim name at the end",
        );
        let unknown = provider("p", "i", URL, "")
            .replace("roles = [\"reader\"]", "roles = [\"reader\", \"root\"]")
            .replace(
                "resources = [\"orders\"]",
                "resources = [\"orders\", \"billing\"]",
            );
        let found = problems(&unknown);
        assert_has(&found, "map[0].roles: names unknown role `root`");
        assert_has(&found, "map[0].resources: names unknown resource `billing`");
        let empty = provider("p", "i", URL, "")
            .replace("roles = [\"reader\"]", "roles = []")
            .replace("resources = [\"orders\"]", "resources = []");
        let found = problems(&empty);
        assert_has(&found, "map[0].roles: must name at least one role");
        assert_has(&found, "map[0].resources: must name at least one resource");
        assert_has(
            &problems(&provider("p", "i", URL, "ttl = \"2h\"")),
            "map[0].ttl: must not exceed identity.max_ttl",
        );
        assert_has(
            &problems(&provider("p", "i", URL, "ttl = \"0s\"")),
            "map[0].ttl: must be greater than zero",
        );
        let no_rules = format!(
            "\n[[identity.provider]]\nname = \"p\"\nissuer = \"i\"\naudience = \"a\"\n{URL}\n"
        );
        assert_has(
            &problems(&no_rules),
            "has no [[identity.provider.map]] rule",
        );
    }
}
