//! Running searches and history listings: the same steps on every backend.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::{HistoryPage, HistoryQuery, ResourceVersion, SearchResult};
use crate::query::{Include, SearchQuery};
use crate::sql::{self, Dialect, Sql};

/// Most resources one `_revinclude` adds to a page unless the query says otherwise
/// ([`SearchQuery::revinclude_limit`]).
pub const REVINCLUDE_LIMIT: usize = 5000;

/// A connection that can run the statements of [`crate::sql`].
#[async_trait]
pub trait ReadConn: Send {
    /// Rows selecting [`sql::VERSION_COLUMNS`].
    async fn versions(&mut self, sql: &Sql) -> Result<Vec<ResourceVersion>>;
    /// A single-row, single-column count.
    async fn count(&mut self, sql: &Sql) -> Result<u64>;
}

pub async fn read(
    conn: &mut dyn ReadConn,
    d: &dyn Dialect,
    ty: &str,
    id: &str,
) -> Result<Option<ResourceVersion>> {
    Ok(conn.versions(&sql::read(d, ty, id)).await?.pop())
}

pub async fn vread(
    conn: &mut dyn ReadConn,
    d: &dyn Dialect,
    ty: &str,
    id: &str,
    version_id: i64,
) -> Result<Option<ResourceVersion>> {
    Ok(conn
        .versions(&sql::vread(d, ty, id, version_id))
        .await?
        .pop())
}

pub async fn search(
    conn: &mut dyn ReadConn,
    d: &dyn Dialect,
    q: &SearchQuery,
) -> Result<SearchResult> {
    let total = if q.total || q.summary_count {
        Some(conn.count(&sql::search_count(d, q)).await?)
    } else {
        None
    };
    if q.summary_count {
        return Ok(SearchResult {
            total,
            ..SearchResult::default()
        });
    }
    let mut matches = if q.count == 0 {
        Vec::new()
    } else {
        conn.versions(&sql::search_page(d, q)).await?
    };
    let has_more = matches.len() > q.count;
    matches.truncate(q.count);
    let mut included: Vec<ResourceVersion> = Vec::new();
    let mut warnings = Vec::new();
    if !matches.is_empty() && (!q.include.is_empty() || !q.revinclude.is_empty()) {
        let ids: Vec<String> = matches.iter().map(|m| m.id.clone()).collect();
        let mut seen: std::collections::HashSet<(String, String)> = matches
            .iter()
            .map(|m| (m.resource_type.clone(), m.id.clone()))
            .collect();
        let mut add = |rows: Vec<ResourceVersion>, included: &mut Vec<ResourceVersion>| {
            for r in rows {
                if seen.insert((r.resource_type.clone(), r.id.clone())) {
                    included.push(r);
                }
            }
        };
        for inc in &q.include {
            let rows = conn
                .versions(&sql::include(d, inc, &ids, q.access.as_ref()))
                .await?;
            add(rows, &mut included);
        }
        for inc in &q.revinclude {
            let limit = q.revinclude_limit;
            // One row more than the limit tells whether the limit cut anything off.
            let mut rows = conn
                .versions(&sql::revinclude(
                    d,
                    inc,
                    &q.resource_type,
                    &ids,
                    limit.saturating_add(1),
                    q.access.as_ref(),
                ))
                .await?;
            if rows.len() > limit {
                rows.truncate(limit);
                warnings.push(revinclude_truncated(inc, limit));
            }
            add(rows, &mut included);
        }
    }
    Ok(SearchResult {
        matches,
        included,
        total,
        has_more,
        warnings,
    })
}

fn revinclude_truncated(inc: &Include, limit: usize) -> String {
    let mut value = format!("{}:{}", inc.source_type, inc.param);
    if let Some(t) = inc.target_type {
        value.push(':');
        value.push_str(t);
    }
    format!(
        "_revinclude={value} found more than {limit} resources; only the first {limit} are \
         included. Ask for fewer matches per page (_count), or search {} directly to get them all",
        inc.source_type
    )
}

pub async fn history(
    conn: &mut dyn ReadConn,
    d: &dyn Dialect,
    q: &HistoryQuery,
) -> Result<HistoryPage> {
    let versions = conn.versions(&sql::history(d, q)).await?;
    let total = conn.count(&sql::history_count(d, q)).await?;
    Ok(HistoryPage { versions, total })
}
