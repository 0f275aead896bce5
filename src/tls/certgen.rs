//! Self-signed certificates for development, demos and first start-up.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    date_time_ymd, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
    SanType,
};

use super::config::TlsError;

/// Names always present in a generated certificate, so local clients work out of the box.
const ALWAYS: &[&str] = &["localhost", "127.0.0.1"];

/// Average Gregorian year in seconds; close enough to place validity on a year boundary.
const YEAR_SECS: u64 = 31_556_952;

/// Generate a self-signed ECDSA P-256 server certificate and its key.
///
/// Every entry of `hosts` becomes a SAN (IP SAN if it parses as an IP address, DNS SAN
/// otherwise), plus `localhost` and `127.0.0.1`. Returns `(certificate PEM, PKCS#8 key PEM)`.
pub fn self_signed(hosts: &[String]) -> Result<(String, String), TlsError> {
    let mut params = CertificateParams::default();
    let mut seen: Vec<&str> = Vec::new();
    for host in hosts
        .iter()
        .map(String::as_str)
        .chain(ALWAYS.iter().copied())
    {
        if seen.contains(&host) {
            continue;
        }
        seen.push(host);
        let san = match host.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => {
                let dns = host
                    .to_owned()
                    .try_into()
                    .ok()
                    .filter(|_| valid_dns_name(host))
                    .ok_or_else(|| TlsError::InvalidHost(host.to_owned()))?;
                SanType::DnsName(dns)
            }
        };
        params.subject_alt_names.push(san);
    }

    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "sluice self-signed");
    params.distinguished_name = dn;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    // A bounded validity instead of the library's far-future default; starting on the
    // previous 1 January keeps the certificate valid despite modest clock skew.
    let year = current_year();
    params.not_before = date_time_ymd(year - 1, 1, 1);
    params.not_after = date_time_ymd(year + 5, 1, 1);

    let key = KeyPair::generate().map_err(TlsError::CertGen)?;
    let cert = params.self_signed(&key).map_err(TlsError::CertGen)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A conservative DNS name check (letters, digits, `-`, `.`, optional leading `*.`), so that
/// a typo is reported here instead of producing a certificate no client will accept.
fn valid_dns_name(name: &str) -> bool {
    let name = name.strip_prefix("*.").unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn current_year() -> i32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    1970 + i32::try_from(secs / YEAR_SECS).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    #[test]
    fn generates_parsable_pem() {
        let (cert, key) = self_signed(&["gw.example.com".into(), "10.0.0.7".into()]).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
        CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        assert!(matches!(
            PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            PrivateKeyDer::Pkcs8(_)
        ));
    }

    #[test]
    fn rejects_invalid_hosts() {
        for bad in [
            "",
            "bad host",
            "under_score.example",
            "-lead.example",
            "a..b",
        ] {
            assert!(
                matches!(self_signed(&[bad.into()]), Err(TlsError::InvalidHost(h)) if h == bad),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn duplicates_of_defaults_are_fine() {
        self_signed(&["localhost".into(), "127.0.0.1".into(), "::1".into()]).unwrap();
    }
}
