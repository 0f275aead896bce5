//! The parsed side of the masked-use check. It finds the plain output columns of the top-level
//! query (the only uses masking catches) and walks the whole tree for stars, `TABLE` queries,
//! column alias lists and whole-row references. Masked names are not searched for in the tree:
//! the token pass counted them, and any occurrence beyond the plain output columns found here
//! (in an expression, a clause, a column list, an alias, wherever) blocks the statement.

use super::words::{in_list, is_masked, IMPLICIT_RELATIONS, QUERY_TEXT_FUNCTIONS, ROW_FUNCTIONS};
use sqlparser::ast::{
    Distinct, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, Ident,
    ObjectName, ObjectNamePart, OrderByKind, Query, Select, SelectItem,
    SelectItemQualifiedWildcardKind, SetExpr, Statement, TableAlias, TableFactor, Value, Visit,
    Visitor, WildcardAdditionalOptions,
};
use std::ops::ControlFlow;

/// A masked column used other than as a plain output column of the top-level SELECT.
pub(super) const MASKED_USE: &str =
    "masked column used other than as a plain output column of the top-level SELECT";
const STAR: &str = "`*` outside the top-level select list";
const TABLE_QUERY: &str = "TABLE query outside the top level";
const ALIAS_LIST: &str = "column alias list that renames columns";
const WHOLE_ROW: &str = "whole-row reference to a relation";
const ORDINAL: &str =
    "ORDER BY or GROUP BY by position or output name over masked or `*` output columns";
const DISTINCT: &str = "DISTINCT over masked or `*` output columns";
const FROM_ITEM: &str = "FROM item the masking check does not know";
const SQL_TEXT: &str = "function that runs SQL from text or reads a table by name";
const ROW_FUNCTION: &str = "whole-row function in attribute notation";

/// Verdict on one parsed statement; `masked_tokens` is the token pass's count of identifiers
/// naming a masked column.
pub(super) fn judge(
    stmt: &Statement,
    masked: &[String],
    masked_tokens: usize,
) -> Result<(), &'static str> {
    let (top_query, top_select) = top_level(stmt);
    let mut allowed = 0;
    if let (Some(q), Some(s)) = (top_query, top_select) {
        let out = outputs(s, masked);
        if out.masked_items > 0 || out.star {
            if distinct(s) {
                return Err(DISTINCT);
            }
            order_and_group(q, s, &out.aliases)?;
        }
        if !distinct(s) {
            allowed = out.allowed;
        }
    }
    if masked_tokens > allowed {
        return Err(where_masked(stmt, masked));
    }
    let mut walk = Walk {
        top_query: top_query.map(|q| q as *const Query),
        top_select: top_select
            .filter(|s| !distinct(s))
            .map(|s| s as *const Select),
        ..Walk::default()
    };
    if let ControlFlow::Break(reason) = stmt.visit(&mut walk) {
        return Err(reason);
    }
    let whole_row = walk.idents.iter().any(|id| {
        walk.relations.iter().any(|r| r.eq_ignore_ascii_case(id)) || in_list(IMPLICIT_RELATIONS, id)
    });
    if whole_row {
        return Err(WHOLE_ROW);
    }
    Ok(())
}

/// `DISTINCT` or `DISTINCT ON` (`ALL` is the plain default).
fn distinct(s: &Select) -> bool {
    matches!(s.distinct, Some(Distinct::Distinct | Distinct::On(_)))
}

/// The top-level query, and its SELECT when that is its whole body and selects into nothing.
fn top_level(stmt: &Statement) -> (Option<&Query>, Option<&Select>) {
    let Statement::Query(q) = stmt else {
        return (None, None);
    };
    match q.body.as_ref() {
        SetExpr::Select(s) if s.into.is_none() => (Some(q), Some(s)),
        _ => (Some(q), None),
    }
}

/// What the top-level select list outputs.
struct Outputs {
    /// Masked-name identifiers the list may hold: plain masked columns and output names.
    allowed: usize,
    /// Plain masked columns.
    masked_items: usize,
    /// Output names of masked columns given an alias (`card_number AS cc`).
    aliases: Vec<String>,
    /// Whether the list holds `*` or `t.*`.
    star: bool,
}

fn outputs(s: &Select, masked: &[String]) -> Outputs {
    let mut out = Outputs {
        allowed: 0,
        masked_items: 0,
        aliases: Vec::new(),
        star: false,
    };
    for item in &s.projection {
        let (expr, alias) = match item {
            SelectItem::UnnamedExpr(e) => (e, None),
            SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias)),
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                out.star = true;
                continue;
            }
            SelectItem::ExprWithAliases { .. } => continue,
        };
        // An output name is only a label; naming it after a masked column masks more.
        if alias.is_some_and(|a| is_masked(masked, &a.value)) {
            out.allowed += 1;
        }
        let column = match expr {
            Expr::Identifier(id) => Some(id),
            Expr::CompoundIdentifier(parts) => parts.last(),
            _ => None,
        };
        if column.is_some_and(|c| is_masked(masked, &c.value)) && !postfix_alias(alias) {
            out.allowed += 1;
            out.masked_items += 1;
            if let Some(a) = alias {
                out.aliases.push(a.value.clone());
            }
        }
    }
    out
}

/// `card_number isnull` is a test, not an alias, for PostgreSQL.
fn postfix_alias(alias: Option<&Ident>) -> bool {
    alias.is_some_and(|a| {
        a.quote_style.is_none()
            && (a.value.eq_ignore_ascii_case("isnull") || a.value.eq_ignore_ascii_case("notnull"))
    })
}

/// ORDER BY and GROUP BY of a top-level query whose output holds masked or `*` columns: a
/// position or an output name refers to an output column, and sorting or grouping by a
/// masked one is an oracle on its clear value. Positions are blanked in the canonical text,
/// so every position counts.
fn order_and_group(q: &Query, s: &Select, aliases: &[String]) -> Result<(), &'static str> {
    let refers = |e: &Expr| -> bool {
        let mut f = OutputRef {
            aliases,
            found: false,
        };
        let _ = e.visit(&mut f);
        f.found
    };
    if let Some(order) = &q.order_by {
        match &order.kind {
            OrderByKind::All(_) => return Err(ORDINAL),
            OrderByKind::Expressions(list) => {
                if list.iter().any(|o| refers(&o.expr)) {
                    return Err(ORDINAL);
                }
            }
        }
    }
    match &s.group_by {
        GroupByExpr::All(_) => return Err(ORDINAL),
        GroupByExpr::Expressions(list, _) => {
            if list.iter().any(refers) {
                return Err(ORDINAL);
            }
        }
    }
    Ok(())
}

/// Finds a number or an output name of a masked column in an ORDER BY or GROUP BY item.
struct OutputRef<'a> {
    aliases: &'a [String],
    found: bool,
}

impl Visitor for OutputRef<'_> {
    type Break = ();

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        match e {
            Expr::Value(v) if matches!(v.value, Value::Number(..)) => self.found = true,
            Expr::Identifier(id) if self.aliases.iter().any(|a| a == &id.value) => {
                self.found = true
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// Tree walk: everything that is refused wherever it appears, and the names needed to find
/// whole-row references.
#[derive(Default)]
struct Walk {
    top_query: Option<*const Query>,
    top_select: Option<*const Select>,
    /// Subqueries of EXISTS: their select list is never output, so `*` there is harmless.
    exists: Vec<*const Query>,
    exists_selects: Vec<*const Select>,
    /// Relation names (last part) and aliases declared anywhere in the statement.
    relations: Vec<String>,
    /// Single-part identifiers used as expressions.
    idents: Vec<String>,
}

impl Walk {
    fn declare(&mut self, alias: Option<&TableAlias>) -> ControlFlow<&'static str> {
        if let Some(a) = alias {
            if !a.columns.is_empty() {
                return ControlFlow::Break(ALIAS_LIST);
            }
            self.relations.push(a.name.value.clone());
        }
        ControlFlow::Continue(())
    }
}

impl Visitor for Walk {
    type Break = &'static str;

    fn pre_visit_statement(&mut self, s: &Statement) -> ControlFlow<&'static str> {
        let returning = match s {
            Statement::Insert(i) => {
                if let Some(a) = &i.table_alias {
                    self.relations.push(a.alias.value.clone());
                }
                i.returning.as_deref()
            }
            Statement::Update(u) => u.returning.as_deref(),
            Statement::Delete(d) => d.returning.as_deref(),
            _ => None,
        };
        if returning.is_some_and(|items| items.iter().any(is_star_item)) {
            return ControlFlow::Break(STAR);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<&'static str> {
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                self.declare(Some(&cte.alias))?;
            }
        }
        let top = self.top_query == Some(q as *const Query);
        let table_ok = top && matches!(q.body.as_ref(), SetExpr::Table(_));
        if !table_ok && has_table_query(&q.body) {
            return ControlFlow::Break(TABLE_QUERY);
        }
        if self.exists.contains(&(q as *const Query)) {
            if let SetExpr::Select(s) = q.body.as_ref() {
                self.exists_selects.push(s.as_ref() as *const Select);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, s: &Select) -> ControlFlow<&'static str> {
        let p = s as *const Select;
        let star_ok = self.top_select == Some(p) || self.exists_selects.contains(&p);
        for item in &s.projection {
            let bad = match item {
                SelectItem::Wildcard(opts) => !star_ok || !plain_wildcard(opts),
                SelectItem::QualifiedWildcard(kind, opts) => {
                    !star_ok
                        || !plain_wildcard(opts)
                        || matches!(kind, SelectItemQualifiedWildcardKind::Expr(_))
                }
                _ => false,
            };
            if bad {
                return ControlFlow::Break(STAR);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, name: &ObjectName) -> ControlFlow<&'static str> {
        if let Some(last) = name.0.last() {
            self.relations.push(part_name(last));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, tf: &TableFactor) -> ControlFlow<&'static str> {
        let alias = match tf {
            TableFactor::Table { alias, .. }
            | TableFactor::Derived { alias, .. }
            | TableFactor::TableFunction { alias, .. }
            | TableFactor::Function { alias, .. }
            | TableFactor::UNNEST { alias, .. }
            | TableFactor::NestedJoin { alias, .. }
            | TableFactor::XmlTable { alias, .. } => alias.as_ref(),
            _ => return ControlFlow::Break(FROM_ITEM),
        };
        self.declare(alias)
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<&'static str> {
        match e {
            Expr::Identifier(id) => self.idents.push(id.value.clone()),
            Expr::CompoundIdentifier(parts)
                if parts
                    .last()
                    .is_some_and(|p| in_list(ROW_FUNCTIONS, &p.value)) =>
            {
                return ControlFlow::Break(ROW_FUNCTION)
            }
            Expr::Wildcard(_) | Expr::QualifiedWildcard(..) => return ControlFlow::Break(STAR),
            Expr::Exists { subquery, .. } => self.exists.push(subquery.as_ref() as *const Query),
            Expr::Function(f) => {
                if f.name
                    .0
                    .last()
                    .is_some_and(|p| in_list(QUERY_TEXT_FUNCTIONS, &part_name(p)))
                {
                    return ControlFlow::Break(SQL_TEXT);
                }
                if let FunctionArguments::List(list) = &f.args {
                    let star = list.args.iter().any(|a| {
                        let arg = match a {
                            FunctionArg::Unnamed(arg)
                            | FunctionArg::Named { arg, .. }
                            | FunctionArg::ExprNamed { arg, .. } => arg,
                        };
                        // `count(*)` names no column; `f(t.*)` passes whole rows.
                        !matches!(arg, FunctionArgExpr::Expr(_) | FunctionArgExpr::Wildcard)
                    });
                    if star {
                        return ControlFlow::Break(STAR);
                    }
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

fn is_star_item(item: &SelectItem) -> bool {
    matches!(
        item,
        SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
    )
}

/// A bare `*`: none of the other dialects' `EXCEPT`, `REPLACE`, `RENAME` options.
fn plain_wildcard(opts: &WildcardAdditionalOptions) -> bool {
    opts.opt_ilike.is_none()
        && opts.opt_exclude.is_none()
        && opts.opt_except.is_none()
        && opts.opt_replace.is_none()
        && opts.opt_rename.is_none()
        && opts.opt_alias.is_none()
}

/// Whether a `TABLE t` query is part of this query body (nested queries are walked apart).
fn has_table_query(body: &SetExpr) -> bool {
    match body {
        SetExpr::Table(_) => true,
        SetExpr::SetOperation { left, right, .. } => {
            has_table_query(left) || has_table_query(right)
        }
        _ => false,
    }
}

fn part_name(p: &ObjectNamePart) -> String {
    match p {
        ObjectNamePart::Identifier(i) => i.value.clone(),
        other => other.to_string(),
    }
}

/// Names the clause holding a masked use, for the client's error message; the generic text
/// when the use is somewhere less common (a column list, an alias).
fn where_masked(stmt: &Statement, masked: &[String]) -> &'static str {
    let Statement::Query(q) = stmt else {
        return MASKED_USE;
    };
    let m = |node: &dyn Mentions| node.mentions(masked);
    if q.with
        .as_ref()
        .is_some_and(|w| w.cte_tables.iter().any(|c| m(&*c.query)))
    {
        return "masked column in a WITH query";
    }
    let s = match q.body.as_ref() {
        SetExpr::Select(s) => s,
        SetExpr::SetOperation { .. } => {
            return "masked column in a set operation (UNION, INTERSECT, EXCEPT)"
        }
        SetExpr::Values(_) => return "masked column in VALUES",
        _ => return MASKED_USE,
    };
    if s.into.is_some() {
        return "masked column in SELECT INTO";
    }
    let computed = s.projection.iter().any(|item| match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
            !matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) && m(e)
        }
        _ => false,
    });
    if computed {
        return "masked column in an expression, cast or function call";
    }
    for twj in &s.from {
        if m(&twj.relation) || twj.joins.iter().any(|j| m(&j.relation)) {
            return "masked column in a subquery or function in FROM";
        }
        if twj.joins.iter().any(|j| m(&j.join_operator)) {
            return "masked column in a JOIN condition";
        }
    }
    if s.selection.as_ref().is_some_and(|e| m(e)) {
        return "masked column in WHERE";
    }
    if m(&s.group_by) {
        return "masked column in GROUP BY";
    }
    if s.having.as_ref().is_some_and(|e| m(e)) {
        return "masked column in HAVING";
    }
    if q.order_by.as_ref().is_some_and(|o| m(o)) {
        return "masked column in ORDER BY";
    }
    if !s.named_window.is_empty() && s.named_window.iter().any(|w| m(w)) {
        return "masked column in a WINDOW clause";
    }
    MASKED_USE
}

/// Whether a subtree names a masked column in an expression.
trait Mentions {
    fn mentions(&self, masked: &[String]) -> bool;
}

impl<T: Visit> Mentions for T {
    fn mentions(&self, masked: &[String]) -> bool {
        struct Find<'a>(&'a [String]);
        impl Visitor for Find<'_> {
            type Break = ();
            fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
                let hit = match e {
                    Expr::Identifier(id) => is_masked(self.0, &id.value),
                    Expr::CompoundIdentifier(parts) => {
                        parts.iter().any(|p| is_masked(self.0, &p.value))
                    }
                    _ => false,
                };
                if hit {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            }
        }
        self.visit(&mut Find(masked)).is_break()
    }
}
