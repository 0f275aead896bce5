//! The catalog's table cache: names per (resource, table OID), expiring after a TTL and bounded
//! in size. Pure bookkeeping with the clock passed in, so expiry and eviction are unit-tested
//! without waiting.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Names of one table and of its live columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableInfo {
    pub schema: String,
    pub table: String,
    /// `(attnum, name)` sorted by attribute number; dropped columns are absent.
    pub columns: Vec<(i16, String)>,
}

impl TableInfo {
    /// The name of attribute `attnum`, if the table has such a live column.
    pub fn column(&self, attnum: i16) -> Option<&str> {
        self.columns
            .binary_search_by_key(&attnum, |(n, _)| *n)
            .ok()
            .and_then(|i| self.columns.get(i))
            .map(|(_, name)| name.as_str())
    }
}

/// One cached answer: a table, or the fact that no relation has this OID.
#[derive(Clone, Debug)]
struct Entry {
    fetched: Instant,
    /// `None` remembers that the OID does not exist (e.g. a dropped table), so it is not
    /// looked up again on every row description until the TTL passes.
    table: Option<Rc<TableInfo>>,
}

/// Answers cached per resource and table OID.
#[derive(Debug)]
pub struct Tables {
    ttl: Duration,
    capacity: usize,
    /// Keyed by resource first so lookups borrow the resource name instead of allocating.
    by_resource: HashMap<String, HashMap<u32, Entry>>,
    len: usize,
}

/// What the cache knows about one OID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cached {
    /// A table, fetched less than a TTL ago.
    Table(Rc<TableInfo>),
    /// No relation has this OID, as of less than a TTL ago.
    Unknown,
    /// Never fetched, or fetched too long ago.
    Missing,
}

impl Tables {
    /// An empty cache whose entries live for `ttl` and which holds at most `capacity` entries.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            by_resource: HashMap::new(),
            len: 0,
        }
    }

    /// Number of entries held (tables and unknown OIDs, fresh or not).
    pub fn len(&self) -> usize {
        self.len
    }

    /// What is known about `oid` of `resource` at `now`.
    pub fn get(&self, resource: &str, oid: u32, now: Instant) -> Cached {
        match self.by_resource.get(resource).and_then(|t| t.get(&oid)) {
            Some(e) if self.fresh(e, now) => match &e.table {
                Some(t) => Cached::Table(t.clone()),
                None => Cached::Unknown,
            },
            _ => Cached::Missing,
        }
    }

    /// Whether any of `oids` must be fetched at `now`; zero (not a table) never is.
    pub fn any_missing(&self, resource: &str, oids: &[u32], now: Instant) -> bool {
        oids.iter()
            .any(|&oid| oid != 0 && self.get(resource, oid, now) == Cached::Missing)
    }

    /// Stores the answer of one lookup: every OID in `asked` that is not in `found` is
    /// remembered as unknown. Makes room first (see [`Tables::make_room`]).
    pub fn insert(
        &mut self,
        resource: &str,
        asked: &[u32],
        found: HashMap<u32, TableInfo>,
        now: Instant,
    ) {
        self.make_room(asked.len(), now);
        let mut found = found;
        let tables = match self.by_resource.get_mut(resource) {
            Some(t) => t,
            None => self.by_resource.entry(resource.to_owned()).or_default(),
        };
        for &oid in asked {
            let entry = Entry {
                fetched: now,
                table: found.remove(&oid).map(Rc::new),
            };
            if tables.insert(oid, entry).is_none() {
                self.len += 1;
            }
        }
    }

    /// Forgets everything about `resource` (its upstream changed).
    pub fn clear_resource(&mut self, resource: &str) {
        if let Some(t) = self.by_resource.remove(resource) {
            self.len -= t.len();
        }
    }

    /// Makes room for `incoming` new entries: expired entries go first; if that is not enough,
    /// everything goes. Clearing is crude but cheap and rare: a shard that meets more tables
    /// than the bound within one TTL refills from the upstream, one query per row description.
    fn make_room(&mut self, incoming: usize, now: Instant) {
        if self.len + incoming <= self.capacity {
            return;
        }
        let ttl = self.ttl;
        let mut len = 0;
        self.by_resource.retain(|_, tables| {
            tables.retain(|_, e| now.saturating_duration_since(e.fetched) < ttl);
            len += tables.len();
            !tables.is_empty()
        });
        self.len = len;
        if self.len + incoming > self.capacity {
            self.by_resource.clear();
            self.len = 0;
        }
    }

    fn fresh(&self, e: &Entry, now: Instant) -> bool {
        now.saturating_duration_since(e.fetched) < self.ttl
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(table: &str, cols: &[(i16, &str)]) -> TableInfo {
        TableInfo {
            schema: "public".into(),
            table: table.into(),
            columns: cols.iter().map(|(n, c)| (*n, (*c).to_owned())).collect(),
        }
    }

    fn found(entries: &[(u32, TableInfo)]) -> HashMap<u32, TableInfo> {
        entries.iter().cloned().collect()
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(60);
        let mut c = Tables::new(ttl, 100);
        c.insert("db", &[10], found(&[(10, info("t", &[(1, "a")]))]), t0);
        assert!(matches!(c.get("db", 10, t0), Cached::Table(t) if t.table == "t"));
        assert!(matches!(
            c.get("db", 10, t0 + ttl - Duration::from_millis(1)),
            Cached::Table(_)
        ));
        assert_eq!(c.get("db", 10, t0 + ttl), Cached::Missing);
        assert!(c.any_missing("db", &[10], t0 + ttl));
        assert!(!c.any_missing("db", &[10], t0));
    }

    #[test]
    fn oids_not_found_are_remembered_as_unknown_for_the_ttl() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(5);
        let mut c = Tables::new(ttl, 100);
        c.insert("db", &[10, 11], found(&[(10, info("t", &[]))]), t0);
        assert_eq!(c.get("db", 11, t0), Cached::Unknown);
        assert!(!c.any_missing("db", &[10, 11], t0));
        assert_eq!(c.get("db", 11, t0 + ttl), Cached::Missing);
    }

    #[test]
    fn resources_do_not_share_entries() {
        let t0 = Instant::now();
        let mut c = Tables::new(Duration::from_secs(60), 100);
        c.insert("a", &[10], found(&[(10, info("in_a", &[]))]), t0);
        c.insert("b", &[10], found(&[(10, info("in_b", &[]))]), t0);
        assert!(matches!(c.get("a", 10, t0), Cached::Table(t) if t.table == "in_a"));
        assert!(matches!(c.get("b", 10, t0), Cached::Table(t) if t.table == "in_b"));
        assert_eq!(c.get("c", 10, t0), Cached::Missing);
        c.clear_resource("a");
        assert_eq!(c.get("a", 10, t0), Cached::Missing);
        assert!(matches!(c.get("b", 10, t0), Cached::Table(_)));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn refreshing_an_entry_replaces_it_without_growing() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(1);
        let mut c = Tables::new(ttl, 100);
        c.insert("db", &[10], found(&[(10, info("t", &[(1, "old")]))]), t0);
        let later = t0 + ttl * 2;
        c.insert("db", &[10], found(&[(10, info("t", &[(1, "new")]))]), later);
        assert_eq!(c.len(), 1);
        match c.get("db", 10, later) {
            Cached::Table(t) => assert_eq!(t.column(1), Some("new")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_full_cache_drops_expired_entries_first() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(10);
        let mut c = Tables::new(ttl, 3);
        c.insert("db", &[1, 2], HashMap::new(), t0);
        let t1 = t0 + Duration::from_secs(8);
        c.insert("db", &[3], HashMap::new(), t1);
        assert_eq!(c.len(), 3);
        // 1 and 2 have expired by t2; 3 has not and survives.
        let t2 = t0 + ttl;
        c.insert("db", &[4], HashMap::new(), t2);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get("db", 3, t2), Cached::Unknown);
        assert_eq!(c.get("db", 4, t2), Cached::Unknown);
    }

    #[test]
    fn a_full_cache_of_fresh_entries_is_cleared_and_never_exceeds_its_bound() {
        let t0 = Instant::now();
        let mut c = Tables::new(Duration::from_secs(60), 3);
        c.insert("a", &[1, 2], HashMap::new(), t0);
        c.insert("b", &[3], HashMap::new(), t0);
        c.insert("b", &[4, 5], HashMap::new(), t0);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get("a", 1, t0), Cached::Missing);
        assert_eq!(c.get("b", 4, t0), Cached::Unknown);
        for oid in 100..200 {
            c.insert("b", &[oid], HashMap::new(), t0);
            assert!(c.len() <= 3);
        }
    }

    #[test]
    fn columns_are_found_by_attribute_number() {
        let t = info("t", &[(-1, "ctid"), (1, "a"), (3, "c")]);
        assert_eq!(t.column(1), Some("a"));
        assert_eq!(t.column(2), None);
        assert_eq!(t.column(3), Some("c"));
        assert_eq!(t.column(-1), Some("ctid"));
        assert_eq!(t.column(0), None);
    }
}
