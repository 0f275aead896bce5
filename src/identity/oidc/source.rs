//! Where a provider's key set comes from: a file read at start, or a URL fetched at start and
//! on every refresh through the shared blocking HTTP client.

use std::path::PathBuf;

use super::error::OidcError;
use super::jwks::KeySet;
use crate::http_client::{Client, Request, Url};

/// Largest key set accepted, from a file or a URL.
pub(crate) const MAX_JWKS_BYTES: usize = 1 << 20;

/// A provider's key source.
pub(crate) enum Source {
    File(PathBuf),
    Url { url: Url, client: Client },
}

impl Source {
    /// The source named by a provider's settings: exactly one of a file or a URL.
    pub(crate) fn new(
        provider: &str,
        file: Option<&PathBuf>,
        url: Option<&str>,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Source, OidcError> {
        let config = |reason: String| OidcError::Config {
            provider: provider.to_owned(),
            reason,
        };
        match (file, url) {
            (Some(path), None) => Ok(Source::File(path.clone())),
            (None, Some(url)) => {
                let url = Url::parse(url).map_err(|e| config(format!("jwks_url: {e}")))?;
                if !url.https && !url.is_loopback_host() {
                    return Err(config(
                        "jwks_url: http:// is only allowed on a loopback address; use https://"
                            .into(),
                    ));
                }
                let mut client =
                    Client::new(ca_file).map_err(|e| config(format!("jwks_ca_file: {e}")))?;
                client.max_response = MAX_JWKS_BYTES + 16 * 1024;
                client.plaintext_loopback_only = true;
                Ok(Source::Url { url, client })
            }
            _ => Err(config("give exactly one of jwks_file and jwks_url".into())),
        }
    }

    /// Whether the keys can be fetched again.
    pub(crate) fn is_url(&self) -> bool {
        matches!(self, Source::Url { .. })
    }

    /// Reads or fetches the key set.
    pub(crate) fn load(&self, provider: &str) -> Result<KeySet, OidcError> {
        let bytes = match self {
            Source::File(path) => {
                let bytes = std::fs::read(path).map_err(|source| OidcError::Read {
                    provider: provider.to_owned(),
                    path: path.clone(),
                    source,
                })?;
                if bytes.len() > MAX_JWKS_BYTES {
                    return Err(OidcError::Read {
                        provider: provider.to_owned(),
                        path: path.clone(),
                        source: std::io::Error::other("larger than 1 MiB"),
                    });
                }
                bytes
            }
            Source::Url { url, client } => {
                let fail = |reason: String| OidcError::Fetch {
                    provider: provider.to_owned(),
                    url: url.to_string(),
                    reason,
                };
                let resp = client
                    .send(&Request::get(url, &[("Accept", "application/json")]))
                    .map_err(|e| fail(e.to_string()))?;
                if resp.status != 200 {
                    return Err(fail(format!(
                        "answered {}: {}",
                        resp.status,
                        resp.body_excerpt()
                    )));
                }
                if resp.body.len() > MAX_JWKS_BYTES {
                    return Err(fail("key set larger than 1 MiB".into()));
                }
                resp.body
            }
        };
        KeySet::parse(&bytes).map_err(|source| OidcError::Jwks {
            provider: provider.to_owned(),
            source,
        })
    }
}
