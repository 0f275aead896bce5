//! The control plane's record of tokens it issued and tokens it revoked, and the revocation set
//! every shard reads.
//!
//! Revoking a token revokes everything delegated from it: a child carries its ancestors' ids in
//! its chain, so [`RevokedSet::covers`] checks the token's own id and each ancestor's, and no
//! tree has to be walked. Records are appended as JSON lines to a journal and synced before the
//! revocation is acknowledged, so revocations survive a restart. A record only matters until
//! the token it names expires (a descendant never outlives its ancestor), so expired records
//! are dropped when the journal is opened.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::claims::Claims;

/// Why the journal could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("revocation file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Record {
    /// A token the control plane minted.
    Issued {
        jti: String,
        exp: u64,
        /// Ancestors' ids, root first.
        chain: Vec<String>,
        /// Hash of the identity provider's token it was exchanged for, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idp: Option<String>,
    },
    /// A revoked token.
    Revoked {
        jti: String,
        exp: u64,
        at: u64,
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idp: Option<String>,
    },
}

/// Revoked token ids and revoked identity-provider tokens, as the shards read them.
#[derive(Debug, Default)]
pub struct RevokedSet {
    jtis: HashSet<String>,
    idp: HashSet<String>,
}

impl RevokedSet {
    /// Whether `claims` is revoked: its own id or any ancestor's.
    pub fn covers(&self, claims: &Claims) -> bool {
        !self.jtis.is_empty()
            && (self.jtis.contains(&claims.jti)
                || claims.chain.iter().any(|l| self.jtis.contains(&l.jti)))
    }

    /// Whether an identity provider's token (by its hash) was revoked with the session token it
    /// was exchanged for.
    pub fn covers_idp(&self, hash: &str) -> bool {
        self.idp.contains(hash)
    }

    /// Revoked token ids.
    pub fn len(&self) -> usize {
        self.jtis.len()
    }

    /// Whether nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.jtis.is_empty()
    }
}

/// The current revocation set and a generation that moves on every change, so that a shard can
/// notice a change by comparing one number on its timer.
#[derive(Default)]
pub struct Revocations {
    set: ArcSwap<RevokedSet>,
    generation: AtomicU64,
}

impl Revocations {
    /// The current set.
    pub fn load(&self) -> arc_swap::Guard<Arc<RevokedSet>> {
        self.set.load()
    }

    /// The current set, kept.
    pub fn load_full(&self) -> Arc<RevokedSet> {
        self.set.load_full()
    }

    /// Moves on every published change.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn publish(&self, set: RevokedSet) {
        self.set.store(Arc::new(set));
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

struct Issued {
    exp: u64,
    chain: Vec<String>,
    idp: Option<String>,
}

struct Revoked {
    exp: u64,
    idp: Option<String>,
}

/// What a revocation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoke {
    /// Newly revoked.
    Done,
    /// It was revoked before.
    Already,
}

/// The journal and the in-memory state built from it. Owned by the control plane.
pub struct Ledger {
    path: Option<PathBuf>,
    file: Option<File>,
    issued: HashMap<String, Issued>,
    revoked: HashMap<String, Revoked>,
    /// Lifetime assumed for a revoked token the ledger never saw issued.
    max_ttl: Duration,
    shared: Arc<Revocations>,
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Ledger {
    /// Opens (or creates) the journal at `path`, or keeps everything in memory when `None`.
    /// Records of tokens expired at `now` are dropped and the journal is rewritten without them.
    pub fn open(
        path: Option<&Path>,
        max_ttl: Duration,
        now: SystemTime,
    ) -> Result<Ledger, LedgerError> {
        let mut ledger = Ledger {
            path: path.map(Path::to_path_buf),
            file: None,
            issued: HashMap::new(),
            revoked: HashMap::new(),
            max_ttl,
            shared: Arc::new(Revocations::default()),
        };
        if let Some(path) = path {
            let io = |source| LedgerError::Io {
                path: path.to_path_buf(),
                source,
            };
            match File::open(path) {
                Ok(f) => ledger.replay(BufReader::new(f), secs(now), path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(e)),
            }
            ledger.rewrite(path).map_err(io)?;
            let file = OpenOptions::new().append(true).open(path).map_err(io)?;
            ledger.file = Some(file);
        }
        ledger.publish();
        Ok(ledger)
    }

    /// The set the shards read.
    pub fn revocations(&self) -> Arc<Revocations> {
        self.shared.clone()
    }

    /// Notes a token the control plane issued (`idp`: the hash of the provider token it was
    /// exchanged for).
    pub fn issued(&mut self, claims: &Claims, idp: Option<&str>) -> std::io::Result<()> {
        let record = Record::Issued {
            jti: claims.jti.clone(),
            exp: claims.exp,
            chain: claims.chain.iter().map(|l| l.jti.clone()).collect(),
            idp: idp.map(str::to_owned),
        };
        self.append(&record)?;
        self.apply(record);
        Ok(())
    }

    /// Revokes `jti` (and so everything delegated from it). `exp` is the token's expiry when
    /// the caller knows it. Returns once the record is on disk.
    pub fn revoke(
        &mut self,
        jti: &str,
        exp: Option<u64>,
        by: &str,
        now: SystemTime,
    ) -> std::io::Result<Revoke> {
        if self.revoked.contains_key(jti) {
            return Ok(Revoke::Already);
        }
        let now = secs(now);
        let known = self.issued.get(jti);
        let exp = exp
            .or(known.map(|i| i.exp))
            .unwrap_or_else(|| now.saturating_add(self.max_ttl.as_secs()));
        let record = Record::Revoked {
            jti: jti.to_owned(),
            exp,
            at: now,
            by: by.to_owned(),
            idp: known.and_then(|i| i.idp.clone()),
        };
        self.append(&record)?;
        self.apply(record);
        self.publish();
        Ok(Revoke::Done)
    }

    /// Whether `caller` may revoke `jti` without being an admin: it is the caller itself, or a
    /// token this gateway delegated from it.
    pub fn may_revoke(&self, caller: &Claims, jti: &str) -> bool {
        caller.jti == jti
            || self
                .issued
                .get(jti)
                .is_some_and(|i| i.chain.contains(&caller.jti))
    }

    /// Forgets records of tokens expired at `now` (the journal is compacted on the next open).
    pub fn prune(&mut self, now: SystemTime) {
        let now = secs(now);
        self.issued.retain(|_, i| i.exp > now);
        let before = self.revoked.len();
        self.revoked.retain(|_, r| r.exp > now);
        if self.revoked.len() != before {
            self.publish();
        }
    }

    fn replay(&mut self, reader: impl BufRead, now: u64, path: &Path) {
        for (n, line) in reader.lines().enumerate() {
            let Ok(line) = line else {
                warn!(file = %path.display(), line = n + 1, "unreadable revocation record skipped");
                continue;
            };
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Record>(&line) {
                Ok(record) => self.apply(record),
                // A crash can leave a torn last line; an acknowledged record is always whole.
                Err(e) => {
                    warn!(file = %path.display(), line = n + 1, error = %e, "malformed revocation record skipped")
                }
            }
        }
        self.issued.retain(|_, i| i.exp > now);
        self.revoked.retain(|_, r| r.exp > now);
    }

    fn apply(&mut self, record: Record) {
        match record {
            Record::Issued {
                jti,
                exp,
                chain,
                idp,
            } => {
                self.issued.insert(jti, Issued { exp, chain, idp });
            }
            Record::Revoked { jti, exp, idp, .. } => {
                self.revoked.insert(jti, Revoked { exp, idp });
            }
        }
    }

    fn records(&self) -> impl Iterator<Item = Record> + '_ {
        let issued = self.issued.iter().map(|(jti, i)| Record::Issued {
            jti: jti.clone(),
            exp: i.exp,
            chain: i.chain.clone(),
            idp: i.idp.clone(),
        });
        let revoked = self.revoked.iter().map(|(jti, r)| Record::Revoked {
            jti: jti.clone(),
            exp: r.exp,
            at: 0,
            by: String::new(),
            idp: r.idp.clone(),
        });
        issued.chain(revoked)
    }

    /// Writes the live records to a new file and renames it over the journal.
    fn rewrite(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("tmp");
        let mut out = File::create(&tmp)?;
        let mut text = String::new();
        for record in self.records() {
            text.push_str(&serde_json::to_string(&record).map_err(std::io::Error::other)?);
            text.push('\n');
        }
        out.write_all(text.as_bytes())?;
        out.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    fn append(&mut self, record: &Record) -> std::io::Result<()> {
        let Some(file) = &mut self.file else {
            return Ok(());
        };
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        file.write_all(&line)?;
        file.sync_data()
    }

    fn publish(&self) {
        let set = RevokedSet {
            jtis: self.revoked.keys().cloned().collect(),
            idp: self
                .revoked
                .values()
                .filter_map(|r| r.idp.clone())
                .collect(),
        };
        self.shared.publish(set);
    }

    /// Where the journal is kept, if anywhere.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(jti: &str, chain: &[&str], exp: u64) -> Claims {
        Claims::test_chain(jti, chain, exp)
    }

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn revoking_a_link_revokes_everything_below_it_only() {
        let mut l = Ledger::open(None, Duration::from_secs(3600), at(100)).unwrap();
        let root = claims("root", &[], 1000);
        let mid = claims("mid", &["root"], 900);
        let leaf = claims("leaf", &["root", "mid"], 800);
        let other = claims("other", &["root"], 900);
        for c in [&root, &mid, &leaf, &other] {
            l.issued(c, None).unwrap();
        }
        let shared = l.revocations();
        let g0 = shared.generation();
        assert_eq!(l.revoke("mid", None, "t", at(200)).unwrap(), Revoke::Done);
        assert_eq!(
            l.revoke("mid", None, "t", at(200)).unwrap(),
            Revoke::Already
        );
        assert!(shared.generation() > g0);
        let set = shared.load();
        assert!(set.covers(&mid) && set.covers(&leaf));
        assert!(!set.covers(&root) && !set.covers(&other));
    }

    #[test]
    fn only_ancestors_and_the_token_itself_may_revoke_without_admin() {
        let mut l = Ledger::open(None, Duration::from_secs(3600), at(100)).unwrap();
        let root = claims("root", &[], 1000);
        let mid = claims("mid", &["root"], 900);
        let leaf = claims("leaf", &["root", "mid"], 800);
        for c in [&root, &mid, &leaf] {
            l.issued(c, None).unwrap();
        }
        assert!(l.may_revoke(&root, "leaf"));
        assert!(l.may_revoke(&mid, "leaf"));
        assert!(l.may_revoke(&leaf, "leaf"));
        assert!(!l.may_revoke(&leaf, "mid"));
        assert!(!l.may_revoke(&mid, "root"));
        assert!(!l.may_revoke(&mid, "unknown"));
    }

    #[test]
    fn revocations_survive_a_reopen_and_expire_with_their_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revocations.jsonl");
        {
            let mut l = Ledger::open(Some(&path), Duration::from_secs(3600), at(100)).unwrap();
            l.issued(&claims("a", &[], 1000), Some("idp-hash")).unwrap();
            l.revoke("a", None, "admin", at(150)).unwrap();
            l.revoke("b", Some(500), "admin", at(150)).unwrap();
            l.revoke("c", None, "admin", at(150)).unwrap();
            // A crash mid-append leaves a torn line.
            let mut f = OpenOptions::new().append(true).open(&path).unwrap();
            f.write_all(b"{\"op\":\"revoked\",\"jti\":\"d\"").unwrap();
        }
        let l = Ledger::open(Some(&path), Duration::from_secs(3600), at(200)).unwrap();
        let set = l.revocations().load_full();
        assert!(set.covers(&claims("a", &[], 1000)));
        assert!(set.covers(&claims("x", &["b"], 400)));
        assert!(set.covers_idp("idp-hash"));
        assert_eq!(set.len(), 3);
        drop(l);
        // After `b` expires its record goes; `c` (expiry unknown) lasts the longest lifetime.
        let l = Ledger::open(Some(&path), Duration::from_secs(3600), at(600)).unwrap();
        let set = l.revocations().load_full();
        assert_eq!(set.len(), 2);
        assert!(!set.covers(&claims("b", &[], 400)));
        let l = Ledger::open(Some(&path), Duration::from_secs(3600), at(3751)).unwrap();
        assert!(l.revocations().load().is_empty());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.is_empty(), "{text}");
    }
}
