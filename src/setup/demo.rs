//! `sluice demo`: a throwaway PostgreSQL seeded with fake personal data, a gateway in front of it
//! configured the way `init` does, and ready-to-paste psql commands for a reader and an admin.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::init::{self, InitArgs};
use super::pgtemp::{random_hex, PgOptions, TempPostgres};
use crate::identity::IssueRequest;
use crate::runtime::{self, Shutdown};

/// Rows seeded into `customers`.
pub const DEMO_ROWS: usize = 120;
/// Name of the demo's sluice resource.
pub const DEMO_RESOURCE: &str = "demo";
const PASSWORD_ENV: &str = "SLUICE_DEMO_UPSTREAM_PASSWORD";

/// Runs the demo until `shutdown` is requested, then removes everything it created.
pub fn run(listen: &str, shutdown: Arc<Shutdown>) -> anyhow::Result<()> {
    let pg = TempPostgres::start(&PgOptions::default())?;
    let app_password = random_hex(16);
    pg.psql(
        "postgres",
        &format!(
            "CREATE ROLE demo_app LOGIN PASSWORD '{app_password}';\nCREATE DATABASE demo OWNER demo_app;"
        ),
    )?;
    let seed = seed_sql(DEMO_ROWS, 0x5eed_cafe);
    pg.psql(
        "demo",
        &format!("{seed}ALTER TABLE customers OWNER TO demo_app;"),
    )?;
    eprintln!(
        "PostgreSQL {} running on 127.0.0.1:{} with {DEMO_ROWS} fake customers",
        pg.bindir().display(),
        pg.port()
    );

    let dir = std::env::temp_dir().join(format!("sluice-demo-{}", random_hex(6)));
    let _cleanup = RemoveDir(dir.clone());
    // The gateway reads the upstream password from the environment, as in production; this
    // process is its only reader.
    std::env::set_var(PASSWORD_ENV, &app_password);
    let config_path = init::write(&InitArgs {
        upstream: format!("postgresql://demo_app@127.0.0.1:{}/demo", pg.port()),
        password_env: PASSWORD_ENV.into(),
        listen: listen.into(),
        out: dir.clone(),
        resource: Some(DEMO_RESOURCE.into()),
        plaintext: listen
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| a.ip().is_loopback()),
    })?;
    let mut loaded = crate::config::load(&config_path)?;
    // Statistics on a free loopback port, for `sluice stats`.
    loaded.config.admin = Some(crate::config::AdminSection::plaintext("127.0.0.1:0"));
    let running = runtime::start(&loaded, shutdown)?;
    let addr = running.addresses[0];

    let issuer = loaded.config.identity.token_issuer()?;
    println!();
    for role in ["reader", "admin"] {
        let (token, _) = issuer.issue(
            &IssueRequest {
                subject: format!("demo-{role}"),
                roles: vec![role.into()],
                resources: vec![DEMO_RESOURCE.into()],
                ttl: Duration::from_secs(8 * 3600),
                chain: Vec::new(),
            },
            SystemTime::now(),
        )?;
        println!(
            "{role}: PGPASSWORD={token} psql \"host={} port={} dbname={DEMO_RESOURCE} user={role} sslmode=require\"",
            addr.ip(),
            addr.port()
        );
    }
    println!();
    println!("Try, as reader and then as admin:");
    println!("  SELECT * FROM customers LIMIT 5;          -- reader sees card numbers, emails, SSNs masked");
    println!(
        "  SELECT row_to_json(c) FROM customers c;   -- derived forms are refused or masked too"
    );
    println!(
        "  DELETE FROM customers WHERE id = 1;       -- reader: blocked by policy (SQLSTATE 42501)"
    );
    if let Some(admin) = running.admin_address {
        println!("Per-core statistics: sluice stats --gateway http://{admin}");
        println!(
            "Hand a child agent a narrower token (TOKEN = the admin token above):\n  \
             sluice token delegate --gateway http://{admin} --token $TOKEN --name child-agent \
             --role reader --resource {DEMO_RESOURCE} --ttl 10m"
        );
    }
    if let Some(file) = loaded.config.audit.as_ref().and_then(|a| a.file.as_ref()) {
        println!(
            "Audit trail (one JSON line per decision): tail -f {}",
            file.display()
        );
    }
    if loaded.config.recording.is_some() {
        let cfg = config_path.display();
        println!("Recorded sessions: sluice sessions --config {cfg} --since 1h");
        println!("  and one of them: sluice replay --config {cfg} SESSION");
    }
    println!("(Ctrl-C stops the demo and removes everything)");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    running.wait()?;
    drop(pg);
    eprintln!("demo stopped; temporary files removed");
    Ok(())
}

struct RemoveDir(std::path::PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A small deterministic generator, so the demo data is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const FIRST: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Ken",
    "Margaret",
    "Dennis",
    "Radia",
    "Linus",
    "Sophie",
    "John",
    "Katherine",
    "Leslie",
    "Hedy",
    "Tim",
    "Joan",
    "Niklaus",
];
const LAST: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Thompson",
    "Hamilton",
    "Ritchie",
    "Perlman",
    "Torvalds",
    "Wilson",
    "McCarthy",
    "Johnson",
    "Lamport",
    "Lamarr",
    "Berners-Lee",
    "Clarke",
    "Wirth",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "example.org",
    "example.net",
    "mail.example.com",
];

/// The Luhn sum of `digits`, doubling every second digit counted from the right, starting with
/// the rightmost when `double_last` is set (when computing a check digit to append).
fn luhn_sum(digits: &[u8], double_last: bool) -> u32 {
    let first = usize::from(!double_last);
    digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == first {
                let x = d * 2;
                x - if x > 9 { 9 } else { 0 }
            } else {
                d
            }
        })
        .sum()
}

/// Appends the Luhn check digit to `digits`.
pub fn luhn_complete(digits: &mut Vec<u8>) {
    let sum = luhn_sum(digits, true);
    digits.push(((10 - sum % 10) % 10) as u8);
}

/// Whether a string of digits passes the Luhn check.
pub fn luhn_valid(digits: &[u8]) -> bool {
    luhn_sum(digits, false) % 10 == 0
}

fn card_number(rng: &mut Rng) -> String {
    let (prefix, len): (&[u8], usize) = match rng.below(4) {
        0 => (&[4], 16),
        1 => (&[5, 1 + rng.below(5) as u8], 16),
        2 => (&[3, 7], 15),
        _ => (&[6, 0, 1, 1], 16),
    };
    let mut digits = prefix.to_vec();
    while digits.len() < len - 1 {
        digits.push(rng.below(10) as u8);
    }
    luhn_complete(&mut digits);
    let s: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
    // Half of them are written with separators, as people type them.
    if rng.below(2) == 0 {
        s
    } else {
        s.as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("-")
    }
}

fn ssn(rng: &mut Rng) -> String {
    let mut area = 1 + rng.below(899);
    if area == 666 {
        area = 667;
    }
    format!(
        "{area:03}-{:02}-{:04}",
        1 + rng.below(99),
        1 + rng.below(9999)
    )
}

/// SQL that creates and fills `customers` with `rows` fake people.
pub fn seed_sql(rows: usize, seed: u64) -> String {
    let mut rng = Rng(seed | 1);
    let mut sql = String::from(
        "CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text, card_number text, ssn text);\nINSERT INTO customers VALUES\n",
    );
    for id in 1..=rows {
        let (first, last) = (rng.pick(FIRST), rng.pick(LAST));
        let email = format!(
            "{}.{}{}@{}",
            first.to_lowercase(),
            last.to_lowercase(),
            rng.below(100),
            rng.pick(DOMAINS)
        );
        let sep = if id == rows { ";\n" } else { ",\n" };
        sql.push_str(&format!(
            "({id}, '{first} {last}', '{email}', '{}', '{}'){sep}",
            card_number(&mut rng),
            ssn(&mut rng)
        ));
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_pass_luhn_and_ssns_have_the_form() {
        let mut rng = Rng(7);
        for _ in 0..500 {
            let card = card_number(&mut rng);
            let digits: Vec<u8> = card
                .bytes()
                .filter(u8::is_ascii_digit)
                .map(|b| b - b'0')
                .collect();
            assert!((15..=16).contains(&digits.len()), "{card}");
            assert!(luhn_valid(&digits), "{card}");
            let s = ssn(&mut rng);
            let b = s.as_bytes();
            assert_eq!(b.len(), 11, "{s}");
            assert_eq!((b[3], b[6]), (b'-', b'-'), "{s}");
            assert!(!s.starts_with("000") && !s.starts_with("666"), "{s}");
        }
        assert!(luhn_valid(&[
            4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
        ]));
        assert!(!luhn_valid(&[
            4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2
        ]));
    }

    #[test]
    fn seed_is_deterministic_and_complete() {
        let a = seed_sql(120, 1);
        assert_eq!(a, seed_sql(120, 1));
        assert_eq!(
            a.matches(".com'").count() + a.matches(".org'").count() + a.matches(".net'").count(),
            120
        );
        assert!(a.trim_end().ends_with(';'));
    }
}
