//! Built-in workloads and the tables they need (created by `sluice-loadgen init`).

/// A built-in workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// `SELECT abalance FROM loadgen_accounts WHERE aid = <random>`: pgbench -S on our table.
    PointSelect,
    /// One small row inserted into `loadgen_events`.
    SmallInsert,
    /// 100 consecutive rows of `loadgen_accounts` from a random starting key.
    #[value(name = "read-100")]
    Read100,
    /// One `loadgen_customers` row with a card number, e-mail address and SSN in text columns,
    /// the values sluice's masking looks for.
    MaskRow,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::PointSelect => "point-select",
            Scenario::SmallInsert => "small-insert",
            Scenario::Read100 => "read-100",
            Scenario::MaskRow => "mask-row",
        }
    }

    /// The query that finds the key range, so runs need not be told how `init` filled the table.
    pub fn probe(self) -> &'static str {
        match self {
            Scenario::MaskRow => "SELECT max(id) FROM loadgen_customers",
            _ => "SELECT max(aid) FROM loadgen_accounts",
        }
    }

    /// Smallest key range the scenario works with.
    pub fn min_keys(self) -> i64 {
        match self {
            Scenario::Read100 => 100,
            _ => 1,
        }
    }

    /// The script, for a table whose keys run from 1 to `keys`.
    pub fn script(self, keys: i64) -> String {
        match self {
            Scenario::PointSelect => {
                format!("SELECT abalance FROM loadgen_accounts WHERE aid = {{rand 1 {keys}}}")
            }
            Scenario::SmallInsert => format!(
                "INSERT INTO loadgen_events (aid, delta, note) VALUES ({{rand 1 {keys}}}, {{rand -5000 5000}}, 'loadgen')"
            ),
            Scenario::Read100 => format!(
                "SELECT aid, bid, abalance, filler FROM loadgen_accounts WHERE aid >= {{rand 1 {}}} ORDER BY aid LIMIT 100",
                keys - 99
            ),
            Scenario::MaskRow => format!(
                "SELECT id, name, email, card_number, ssn FROM loadgen_customers WHERE id = {{rand 1 {keys}}}"
            ),
        }
    }
}

/// The statements `init` runs, each sent on its own (VACUUM cannot run in a multi-statement
/// message). `accounts` rows in `loadgen_accounts` (pgbench_accounts' shape), `customers` in
/// `loadgen_customers`; `loadgen_events` starts empty.
pub fn init_statements(accounts: i64, customers: i64) -> Vec<String> {
    vec![
        "DROP TABLE IF EXISTS loadgen_accounts, loadgen_events, loadgen_customers".into(),
        "CREATE TABLE loadgen_accounts (aid integer PRIMARY KEY, bid integer NOT NULL, \
         abalance integer NOT NULL, filler character(84))"
            .into(),
        format!(
            "INSERT INTO loadgen_accounts SELECT g, 1 + (g - 1) / 100000, 0, '' \
             FROM generate_series(1, {accounts}) g"
        ),
        "CREATE TABLE loadgen_events (id bigserial PRIMARY KEY, aid integer NOT NULL, \
         delta integer NOT NULL, note text, created timestamptz NOT NULL DEFAULT now())"
            .into(),
        "CREATE TABLE loadgen_customers (id integer PRIMARY KEY, name text NOT NULL, \
         email text NOT NULL, card_number text NOT NULL, ssn text NOT NULL)"
            .into(),
        // Well-known test card numbers (all pass the Luhn check) and SSN-shaped values whose
        // area number stays out of the never-issued 000, 666 and 9xx ranges.
        format!(
            "INSERT INTO loadgen_customers SELECT g, 'Customer ' || g, \
             'customer' || g || '@example.com', \
             (ARRAY['4111111111111111', '5555555555554444', '378282246310005', \
                    '6011111111111117', '4012888888881881'])[1 + g % 5], \
             (100 + g % 500) || '-' || lpad((1 + g % 99)::text, 2, '0') || '-' \
             || lpad((1 + g % 9999)::text, 4, '0') \
             FROM generate_series(1, {customers}) g"
        ),
        "VACUUM ANALYZE loadgen_accounts".into(),
        "VACUUM ANALYZE loadgen_customers".into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::script::Script;

    #[test]
    fn every_scenario_parses_with_its_placeholders() {
        for (s, params) in [
            (Scenario::PointSelect, 1),
            (Scenario::SmallInsert, 2),
            (Scenario::Read100, 1),
            (Scenario::MaskRow, 1),
        ] {
            let script = Script::parse(&s.script(1000)).unwrap();
            assert_eq!(script.statements.len(), 1, "{}", s.name());
            assert_eq!(script.statements[0].params(), params, "{}", s.name());
        }
        // read-100 never starts past the last full window of 100 rows.
        assert!(Scenario::Read100.script(1000).contains("{rand 1 901}"));
    }
}
