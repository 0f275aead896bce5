//! Configuration text shared by unit tests across the crate.

/// A loopback plaintext listener and the identity section, the part every test config shares.
pub const HEAD: &str = r#"
[[listener]]
address = "127.0.0.1:0"
protocol = "postgres"
allow_plaintext = true

[identity]
issuer = "sluice"
audience = "sluice"
signing_key = "signing.key"
"#;

/// A PostgreSQL resource on loopback whose database has the resource's name.
pub fn resource(name: &str) -> String {
    format!(
        "\n[[resource]]\nname = \"{name}\"\nhost = \"127.0.0.1\"\ndatabase = \"{name}\"\nuser = \"app\"\n"
    )
}
