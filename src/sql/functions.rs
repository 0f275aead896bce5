//! Function lists: which calls make a statement admin (file, network, process, server control,
//! or SQL run from a string), which write (sequences, notifications, large objects, advisory
//! locks), and which are known to be side-effect free so a query calling them stays on the
//! fast path.

/// Built-in admin functions. A trailing `*` matches a prefix; a name with a `.` must match the
/// schema-qualified call, a name without one matches the function in any schema.
pub const DEFAULT_ADMIN_FUNCTIONS: &[&str] = &[
    // Server files and directories.
    "pg_read_file",
    "pg_read_binary_file",
    "pg_stat_file",
    "pg_ls_dir",
    "pg_ls_*",
    "pg_file_write",
    "pg_file_rename",
    "pg_file_unlink",
    "pg_file_sync",
    "pg_logdir_ls",
    "pg_current_logfile",
    "lo_import",
    "lo_export",
    // Other databases and servers.
    "dblink*",
    // Other sessions and server control.
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_signal_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_promote",
    "pg_switch_wal",
    "pg_switch_xlog",
    "pg_create_restore_point",
    "pg_start_backup",
    "pg_stop_backup",
    "pg_backup_start",
    "pg_backup_stop",
    "pg_wal_replay_pause",
    "pg_wal_replay_resume",
    "pg_log_backend_memory_contexts",
    "pg_stat_reset*",
    "pg_stat_statements_reset",
    "pg_create_physical_replication_slot",
    "pg_create_logical_replication_slot",
    "pg_copy_physical_replication_slot",
    "pg_copy_logical_replication_slot",
    "pg_drop_replication_slot",
    "pg_replication_slot_advance",
    "pg_replication_origin_*",
    "pg_logical_*",
    "pg_import_system_collations",
    // Settings, including ones that change how later text is lexed.
    "set_config",
    // SQL run from a string: the query inside is never seen by the classifier.
    "query_to_xml",
    "query_to_xmlschema",
    "query_to_xml_and_xmlschema",
    "table_to_xml",
    "table_to_xmlschema",
    "table_to_xml_and_xmlschema",
    "cursor_to_xml",
    "cursor_to_xmlschema",
    "schema_to_xml*",
    "database_to_xml*",
    "ts_stat",
    "ts_rewrite",
];

/// Built-in write functions: a statement calling one is at least a write.
pub const DEFAULT_WRITE_FUNCTIONS: &[&str] = &[
    "nextval",
    "setval",
    "pg_notify",
    "lo_create",
    "lo_creat",
    "lo_from_bytea",
    "lo_put",
    "lo_unlink",
    "lo_truncate",
    "lo_truncate64",
    "lowrite",
    // Advisory locks outlive the statement and can block other clients.
    "pg_advisory*",
    "pg_try_advisory*",
];

/// Functions known to have no side effects; a read that calls only these is decided by the
/// fast path. Anything else goes to the full parse (and is reported in `functions`).
const SAFE_FUNCTIONS: &[&str] = &[
    "abs",
    "age",
    "array_agg",
    "array_length",
    "avg",
    "bool_and",
    "bool_or",
    "btrim",
    "cardinality",
    "ceil",
    "ceiling",
    "char",
    "char_length",
    "character_length",
    "coalesce",
    "concat",
    "concat_ws",
    "count",
    "current_date",
    "date_part",
    "date_trunc",
    "decimal",
    "dense_rank",
    "every",
    "extract",
    "first_value",
    "float4",
    "float8",
    "floor",
    "format",
    "generate_series",
    "greatest",
    "int2",
    "int4",
    "int8",
    "interval",
    "json_agg",
    "json_build_object",
    "jsonb_agg",
    "jsonb_build_object",
    "lag",
    "last_value",
    "lead",
    "least",
    "left",
    "length",
    "lower",
    "ltrim",
    "max",
    "md5",
    "min",
    "mod",
    "now",
    "nullif",
    "numeric",
    "octet_length",
    "position",
    "power",
    "rank",
    "replace",
    "right",
    "round",
    "row_number",
    "rtrim",
    "split_part",
    "sqrt",
    "string_agg",
    "strpos",
    "substr",
    "substring",
    "sum",
    "time",
    "timestamp",
    "timestamptz",
    "to_char",
    "to_date",
    "to_number",
    "to_timestamp",
    "trim",
    "trunc",
    "unnest",
    "upper",
    "varchar",
];

/// Whether `pattern` (lower case, optional trailing `*`, optional schema) matches the called
/// name `name` (normalized, maybe schema-qualified). ASCII case-insensitive.
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    let subject = if pattern.contains('.') {
        name
    } else {
        name.rsplit('.').next().unwrap_or(name)
    };
    match pattern.strip_suffix('*') {
        Some(prefix) => {
            subject.len() >= prefix.len()
                && subject.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
        }
        None => subject.eq_ignore_ascii_case(pattern),
    }
}

/// Why `pattern` cannot be used as a function pattern, or `None` when it can: it must be a
/// name or `schema.name` (at most three dot-separated parts, none empty), without quotes or
/// whitespace, with `*` allowed only as its last character.
pub fn pattern_error(pattern: &str) -> Option<&'static str> {
    let body = pattern.strip_suffix('*').unwrap_or(pattern);
    if pattern.is_empty() {
        Some("is empty")
    } else if body.contains('*') {
        Some("may contain `*` only as its last character")
    } else if pattern
        .chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\'' || c == '(' || c == ')')
    {
        Some("must be a bare function name, without quotes, parentheses or whitespace")
    } else if pattern.split('.').count() > 3 {
        Some("has more than three dot-separated parts")
    } else if body.split('.').enumerate().any(|(i, part)| {
        // `*` and `schema.*` leave an empty last part once the star is stripped.
        part.is_empty() && !(i == body.matches('.').count() && pattern.ends_with('*'))
    }) {
        Some("has an empty part")
    } else {
        None
    }
}

/// The first pattern in `patterns` matching `name`.
pub fn find_match<'p, S: AsRef<str>>(patterns: &'p [S], name: &str) -> Option<&'p str> {
    patterns
        .iter()
        .map(AsRef::as_ref)
        .find(|p| pattern_matches(p, name))
}

/// Whether a call of `name` is known side-effect free: an unqualified or `pg_catalog.` name
/// on the safe list.
pub fn is_safe(name: &str) -> bool {
    let bare = match name.split_once('.') {
        None => name,
        Some(("pg_catalog", rest)) if !rest.contains('.') => rest,
        Some(_) => return false,
    };
    SAFE_FUNCTIONS.binary_search(&bare).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_list_is_sorted_for_binary_search() {
        assert!(SAFE_FUNCTIONS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn patterns_match_case_insensitively_with_prefixes_and_schemas() {
        assert!(pattern_matches("pg_read_file", "pg_catalog.pg_read_file"));
        assert!(pattern_matches("pg_read_file", "PG_READ_FILE"));
        assert!(pattern_matches("dblink*", "dblink_exec"));
        assert!(pattern_matches("dblink*", "public.dblink"));
        assert!(!pattern_matches("dblink*", "db_link"));
        assert!(pattern_matches("pg_catalog.lower", "pg_catalog.lower"));
        assert!(!pattern_matches("pg_catalog.lower", "lower"));
        assert!(is_safe("pg_catalog.count") && is_safe("count"));
        assert!(!is_safe("public.count") && !is_safe("nextval"));
    }

    #[test]
    fn pattern_syntax_is_checked() {
        for ok in [
            "pg_sleep",
            "dblink*",
            "*",
            "pg_catalog.pg_sleep",
            "public.*",
            "a.b.c",
        ] {
            assert_eq!(pattern_error(ok), None, "{ok}");
        }
        for bad in [
            "", "a*b", "*x", "pg sleep", "\"Foo\"", "f()", "a..b", ".f", "f.", "a.b.c.d", ".",
        ] {
            assert!(pattern_error(bad).is_some(), "{bad}");
        }
        for p in DEFAULT_ADMIN_FUNCTIONS
            .iter()
            .chain(DEFAULT_WRITE_FUNCTIONS)
        {
            assert_eq!(pattern_error(p), None, "{p}");
        }
    }
}
