//! Per-shard catalog lookup for masking: turns a RowDescription's (table OID, attribute number)
//! into (schema, table, column) names, from a cache filled over one side connection per
//! resource.
//!
//! The relay calls [`Catalog::ensure`] with the table OIDs of a RowDescription (one query for
//! all that are not cached), then builds its row plan with [`Catalog::resolver`], which answers
//! from the cache without I/O.

mod cache;
mod gate;
mod query;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tracing::debug;

use self::cache::{Cached, Tables};
use self::gate::Gate;
use self::query::{Answer, AnswerError};
use super::error::SessionError;
use super::upstream::{self, Upstream};
use crate::codec::pg;
use crate::mask::ColumnResolver;
use crate::proxy::state::UpstreamTarget;

pub use self::cache::TableInfo;

/// How long a cached answer is trusted; renames and drops are seen after at most this long.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);
/// Most cached entries (tables and unknown OIDs) per shard, across resources.
pub const DEFAULT_CAPACITY: usize = 4096;
/// Bound on one [`Catalog::ensure`]: waiting for the side connection, connecting, querying.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long past its TTL an entry still answers the resolver (never [`Catalog::ensure`]).
pub const RESOLVE_GRACE: Duration = Duration::from_secs(1);
/// `application_name` of the side connection, so operators can tell it from sessions.
pub const APPLICATION_NAME: &str = "sluice catalog";

/// Largest message accepted on the side connection (a catalog row is small).
const MAX_MESSAGE: usize = 1 << 20;

/// Why the catalog could not answer. Every variant is the upstream's side (unreachable,
/// refusing, broken or slow); the caller refuses the result it was about to mask.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The side connection could not be opened or authenticated.
    #[error("catalog connection to the upstream: {0}")]
    Connect(#[source] SessionError),
    /// The side connection failed while the query ran.
    #[error("catalog connection to the upstream: {0}")]
    Io(#[source] std::io::Error),
    /// The upstream closed the side connection during the query.
    #[error("the upstream closed the catalog connection")]
    Closed,
    /// The upstream sent something that is not an answer to the query.
    #[error("catalog connection to the upstream: {0}")]
    Protocol(String),
    /// The upstream answered the query with an error.
    #[error("the upstream refused the catalog query: {code}: {message}")]
    Refused { code: String, message: String },
    /// The lookup took longer than the catalog's timeout.
    #[error("catalog lookup timed out after {0:?}")]
    Timeout(Duration),
}

impl CatalogError {
    /// Whether the side connection is unusable after this error (a retry needs a new one).
    fn broken(&self) -> bool {
        !matches!(self, CatalogError::Refused { .. })
    }
}

/// Tunables of a [`Catalog`]; tests shorten the TTL.
#[derive(Clone, Copy, Debug)]
pub struct CatalogSettings {
    pub ttl: Duration,
    pub capacity: usize,
    pub timeout: Duration,
}

impl Default for CatalogSettings {
    fn default() -> Self {
        Self {
            ttl: DEFAULT_TTL,
            capacity: DEFAULT_CAPACITY,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// The side connection of one resource, used by one lookup at a time.
struct Side {
    target: Arc<UpstreamTarget>,
    gate: Gate,
    /// The idle connection; taken out while a lookup uses it, so a lookup that is cancelled
    /// midway (timeout) drops it instead of leaving half an answer for the next one.
    conn: RefCell<Option<Upstream>>,
}

/// The per-shard catalog cache and its side connections. `!Send`: it lives in the shard.
pub struct Catalog {
    settings: CatalogSettings,
    tables: RefCell<Tables>,
    sides: RefCell<HashMap<String, Rc<Side>>>,
}

impl Default for Catalog {
    fn default() -> Self {
        Self::new(CatalogSettings::default())
    }
}

impl Catalog {
    /// An empty catalog; nothing is connected until the first lookup.
    pub fn new(settings: CatalogSettings) -> Self {
        Self {
            settings,
            tables: RefCell::new(Tables::new(settings.ttl, settings.capacity)),
            sides: RefCell::new(HashMap::new()),
        }
    }

    /// Makes sure every OID in `oids` (zeros, meaning "not a table column", are skipped) of
    /// `target`'s resource is answered by the cache, fetching all that are missing or expired
    /// in one query. OIDs with no relation are remembered as unknown. Lookups for a resource
    /// run one at a time on its side connection; a concurrent caller waits, and then usually
    /// finds its answer already cached. The whole call is bounded by the timeout.
    pub async fn ensure(
        &self,
        target: &Arc<UpstreamTarget>,
        oids: &[u32],
    ) -> Result<(), CatalogError> {
        if !self.missing(&target.name, oids) {
            return Ok(());
        }
        let timeout = self.settings.timeout;
        monoio::time::timeout(timeout, self.fetch(target, oids))
            .await
            .map_err(|_| CatalogError::Timeout(timeout))?
    }

    /// A resolver answering from the cache for `resource` (what [`Catalog::ensure`] fetched).
    pub fn resolver<'a>(&'a self, resource: &'a str) -> CatalogResolver<'a> {
        CatalogResolver {
            catalog: self,
            resource,
        }
    }

    /// What the cache holds for one table, if it holds a fresh answer naming one. An entry
    /// is answered for [`RESOLVE_GRACE`] past its TTL, so one that [`Catalog::ensure`] found
    /// fresh cannot expire in the instant before the resolver reads it.
    pub fn table(&self, resource: &str, oid: u32) -> Option<Rc<TableInfo>> {
        let now = Instant::now();
        let as_of = now.checked_sub(RESOLVE_GRACE).unwrap_or(now);
        match self.tables.borrow().get(resource, oid, as_of) {
            Cached::Table(t) => Some(t),
            Cached::Unknown | Cached::Missing => None,
        }
    }

    /// Number of cached entries (tables and unknown OIDs), for metrics and tests.
    pub fn cached(&self) -> usize {
        self.tables.borrow().len()
    }

    fn missing(&self, resource: &str, oids: &[u32]) -> bool {
        self.tables
            .borrow()
            .any_missing(resource, oids, Instant::now())
    }

    async fn fetch(&self, target: &Arc<UpstreamTarget>, oids: &[u32]) -> Result<(), CatalogError> {
        let side = self.side(target);
        let _turn = side.gate.acquire().await;
        // Whoever held the connection before may have fetched these already.
        if !self.missing(&target.name, oids) {
            return Ok(());
        }
        // Everything asked is fetched again, fresh or not, so that all of it carries the same
        // timestamp and none expires between this call and the resolver that follows it.
        let mut asked: Vec<u32> = oids.iter().copied().filter(|&o| o != 0).collect();
        asked.sort_unstable();
        asked.dedup();
        let sql = query::sql(&asked);

        let reused = side.conn.borrow_mut().take();
        let was_reused = reused.is_some();
        let mut conn = match reused {
            Some(c) => c,
            None => connect(&side.target).await?,
        };
        let mut result = run(&mut conn, &sql).await;
        if was_reused && result.as_ref().is_err_and(CatalogError::broken) {
            // The idle connection died (upstream restarted, idle timeout, terminated backend).
            debug!(resource = %target.name, error = %result.as_ref().err().map(ToString::to_string).unwrap_or_default(), "catalog connection lost; reconnecting");
            conn = connect(&side.target).await?;
            result = run(&mut conn, &sql).await;
        }
        match result {
            Ok(found) => {
                side.conn.replace(Some(conn));
                // A newer target for the resource may have replaced this side meanwhile; its
                // cache was cleared then and must not get this upstream's names.
                if self.is_current(&target.name, &side) {
                    self.tables
                        .borrow_mut()
                        .insert(&target.name, &asked, found, Instant::now());
                }
                Ok(())
            }
            Err(e) => {
                if !e.broken() {
                    side.conn.replace(Some(conn));
                }
                Err(e)
            }
        }
    }

    /// The side connection state for `target`, replaced (and the resource's cache cleared) when
    /// the resource now points somewhere else or with another credential.
    fn side(&self, target: &Arc<UpstreamTarget>) -> Rc<Side> {
        let mut sides = self.sides.borrow_mut();
        if let Some(side) = sides.get(&target.name) {
            if same_upstream(&side.target, target) {
                return side.clone();
            }
            self.tables.borrow_mut().clear_resource(&target.name);
        }
        let side = Rc::new(Side {
            target: target.clone(),
            gate: Gate::default(),
            conn: RefCell::new(None),
        });
        sides.insert(target.name.clone(), side.clone());
        side
    }

    fn is_current(&self, resource: &str, side: &Rc<Side>) -> bool {
        self.sides
            .borrow()
            .get(resource)
            .is_some_and(|s| Rc::ptr_eq(s, side))
    }
}

/// Whether two targets reach the same database with the same credential. Every configuration
/// reload builds new targets, so pointer identity would flush the cache on each one.
fn same_upstream(a: &UpstreamTarget, b: &UpstreamTarget) -> bool {
    a.host == b.host
        && a.port == b.port
        && a.database == b.database
        && a.user == b.user
        && a.password == b.password
        && a.tls.as_ref().map(|(_, n)| n) == b.tls.as_ref().map(|(_, n)| n)
}

/// Opens the side connection with the sessions' credential, labelled for operators. It asks
/// for UTF-8 names and cannot write, whatever the role's defaults are.
async fn connect(target: &UpstreamTarget) -> Result<Upstream, CatalogError> {
    let params = [
        ("application_name", APPLICATION_NAME),
        ("client_encoding", "UTF8"),
        ("default_transaction_read_only", "on"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    upstream::connect(target, &params)
        .await
        .map_err(CatalogError::Connect)
}

/// Sends one simple Query and reads its whole answer.
async fn run(conn: &mut Upstream, sql: &str) -> Result<HashMap<u32, TableInfo>, CatalogError> {
    let mut out = BytesMut::with_capacity(sql.len() + 8);
    pg::encode_query(&mut out, sql);
    conn.writer
        .write_all(out.freeze())
        .await
        .map_err(CatalogError::Io)?;
    let mut answer = Answer::default();
    loop {
        while let Some(frame) = pg::decode_frame(&mut conn.buf, MAX_MESSAGE)
            .map_err(|e| CatalogError::Protocol(format!("bad message: {e}")))?
        {
            match answer.feed(&frame) {
                Ok(Some(tables)) => return Ok(tables),
                Ok(None) => {}
                Err(AnswerError::Refused { code, message }) => {
                    return Err(CatalogError::Refused { code, message })
                }
                Err(AnswerError::Protocol(m)) => return Err(CatalogError::Protocol(m)),
            }
        }
        if conn
            .reader
            .read_into(&mut conn.buf)
            .await
            .map_err(CatalogError::Io)?
            == 0
        {
            return Err(CatalogError::Closed);
        }
    }
}

/// Answers [`ColumnResolver`] from a [`Catalog`]'s cache for one resource.
#[derive(Clone, Copy)]
pub struct CatalogResolver<'a> {
    catalog: &'a Catalog,
    resource: &'a str,
}

impl ColumnResolver for CatalogResolver<'_> {
    fn resolve(&self, table_oid: u32, column: i16) -> Option<(String, String, String)> {
        if table_oid == 0 || column == 0 {
            return None;
        }
        let table = self.catalog.table(self.resource, table_oid)?;
        let name = table.column(column)?;
        Some((table.schema.clone(), table.table.clone(), name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backdated(catalog: &Catalog, oid: u32, age: Duration) {
        let info = TableInfo {
            schema: "s".into(),
            table: "t".into(),
            columns: vec![(1, "c".into())],
        };
        let at = Instant::now().checked_sub(age).expect("clock too young");
        catalog
            .tables
            .borrow_mut()
            .insert("db", &[oid], HashMap::from([(oid, info)]), at);
    }

    #[test]
    fn the_resolver_answers_slightly_past_the_ttl_but_not_long_after() {
        let ttl = Duration::from_secs(10);
        let catalog = Catalog::new(CatalogSettings {
            ttl,
            ..CatalogSettings::default()
        });
        backdated(&catalog, 1, ttl + RESOLVE_GRACE / 2);
        backdated(&catalog, 2, ttl + RESOLVE_GRACE * 2);
        let r = catalog.resolver("db");
        assert_eq!(r.resolve(1, 1), Some(("s".into(), "t".into(), "c".into())));
        assert_eq!(r.resolve(2, 1), None);
        assert_eq!(r.resolve(1, 2), None);
        assert_eq!(r.resolve(0, 0), None);
        // ensure does not accept the grace: both must be fetched again.
        assert!(catalog.missing("db", &[1]));
        assert!(catalog.missing("db", &[2]));
        assert!(!catalog.missing("db", &[0]));
    }
}
