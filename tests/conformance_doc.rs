//! `docs/conformance.md` stays true: every requirement id of RFC 9293 Appendix B appears exactly
//! once with a known status, and every test a `done` or `partial` row names exists; the same
//! holds for the tables of RFC 7323, RFC 2018, RFC 2883, RFC 6675, RFC 8985, RFC 6937, RFC
//! 3522, RFC 3708, RFC 4015, RFC 9438 and RFC 9406 (ids `RFC7323-1`, `RFC2018-1`, … up,
//! consecutive).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// Every requirement id of RFC 9293 Appendix B (119), extracted from the RFC's table.
const APPENDIX_B_IDS: [&str; 119] = [
    "MUST-1", "MUST-2", "MUST-3", "MUST-4", "MUST-5", "MUST-6", "MUST-7", "MUST-8", "MUST-9",
    "MUST-10", "MUST-11", "MUST-12", "MUST-13", "MUST-14", "MUST-15", "MUST-16", "MUST-17",
    "MUST-18", "MUST-19", "MUST-20", "MUST-21", "MUST-22", "MUST-23", "MUST-24", "MUST-25",
    "MUST-26", "MUST-27", "MUST-28", "MUST-29", "MUST-30", "MUST-31", "MUST-32", "MUST-33",
    "MUST-34", "MUST-35", "MUST-36", "MUST-37", "MUST-38", "MUST-39", "MUST-40", "MUST-41",
    "MUST-42", "MUST-43", "MUST-44", "MUST-45", "MUST-46", "MUST-47", "MUST-48", "MUST-49",
    "MUST-50", "MUST-51", "MUST-52", "MUST-53", "MUST-54", "MUST-55", "MUST-56", "MUST-57",
    "MUST-58", "MUST-59", "MUST-60", "MUST-61", "MUST-62", "MUST-63", "MUST-64", "MUST-65",
    "MUST-66", "MUST-67", "MUST-68", "MUST-69", "SHLD-1", "SHLD-2", "SHLD-3", "SHLD-4", "SHLD-5",
    "SHLD-6", "SHLD-7", "SHLD-8", "SHLD-9", "SHLD-10", "SHLD-11", "SHLD-12", "SHLD-13", "SHLD-14",
    "SHLD-15", "SHLD-16", "SHLD-17", "SHLD-18", "SHLD-19", "SHLD-20", "SHLD-21", "SHLD-22",
    "SHLD-23", "SHLD-24", "SHLD-25", "SHLD-26", "SHLD-27", "SHLD-28", "SHLD-29", "SHLD-30",
    "SHLD-31", "MAY-1", "MAY-2", "MAY-3", "MAY-4", "MAY-5", "MAY-6", "MAY-7", "MAY-8", "MAY-9",
    "MAY-10", "MAY-11", "MAY-12", "MAY-13", "MAY-14", "MAY-15", "MAY-16", "MAY-17", "MAY-18",
    "REC-1",
];

const STATUSES: [&str; 6] = ["done", "partial", "planned", "n/a", "not implemented", "deviation"];

struct Row {
    id: String,
    status: String,
    reference: String,
}

/// The congestion-control tables: RFC 9438 (CUBIC) and RFC 9406 (HyStart++).
const CONGESTION_TABLES: [(&str, &str); 2] = [("RFC9438-", "RFC 9438"), ("RFC9406-", "RFC 9406")];

/// The prefixes of RFC 9293 Appendix B ids.
const APPENDIX_B_PREFIXES: [&str; 4] = ["MUST-", "SHLD-", "MAY-", "REC-"];

/// The tables after the first: the prefix of their ids and the RFC they list.
const RFC_TABLES: [(&str, &str); 9] = [
    ("RFC7323-", "RFC 7323"),
    ("RFC2018-", "RFC 2018"),
    ("RFC2883-", "RFC 2883"),
    ("RFC6675-", "RFC 6675"),
    ("RFC8985-", "RFC 8985"),
    ("RFC6937-", "RFC 6937"),
    ("RFC3522-", "RFC 3522"),
    ("RFC3708-", "RFC 3708"),
    ("RFC4015-", "RFC 4015"),
];

/// The rows of the first table whose first cell looks like a requirement id.
fn rows(markdown: &str) -> Vec<Row> {
    rows_with(markdown, &APPENDIX_B_PREFIXES)
}

/// The table rows whose first cell starts with one of `prefixes`.
fn rows_with(markdown: &str, prefixes: &[&str]) -> Vec<Row> {
    markdown
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> =
                line.trim().trim_matches('|').split('|').map(str::trim).collect();
            let id = *cells.first()?;
            let is_id = prefixes.iter().any(|p| id.starts_with(p));
            (is_id && cells.len() == 5).then(|| Row {
                id: id.to_string(),
                status: cells[3].to_string(),
                reference: cells[4].to_string(),
            })
        })
        .collect()
}

/// The `path::function` names in backticks within a cell.
fn test_names(reference: &str) -> Vec<(String, String)> {
    reference
        .split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|name| {
            let (path, function) = name.rsplit_once("::")?;
            let plausible = path.starts_with("tests/") || path.starts_with("src/");
            plausible.then(|| (path.to_string(), function.to_string()))
        })
        .collect()
}

/// Every problem with the table, one line each.
fn problems(markdown: &str, root: &Path) -> Vec<String> {
    check(&rows(markdown), &APPENDIX_B_IDS, root)
}

/// Every problem with the table of ids `prefix`: they are `<prefix>1` to `<prefix>n`, each
/// once, and its rows obey the rules of the first table.
fn table_problems(markdown: &str, root: &Path, prefix: &str, rfc: &str) -> Vec<String> {
    let rows = rows_with(markdown, &[prefix]);
    let ids: Vec<String> = (1..=rows.len()).map(|n| format!("{prefix}{n}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut problems = check(&rows, &ids, root);
    if rows.is_empty() {
        problems.push(format!("no {rfc} table"));
    }
    problems
}

/// Every problem with the RFC 7323 table.
fn rfc7323_problems(markdown: &str, root: &Path) -> Vec<String> {
    table_problems(markdown, root, "RFC7323-", "RFC 7323")
}

/// The problems of `rows` against the ids they must cover, each exactly once.
fn check(rows: &[Row], expected: &[&str], root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for row in rows {
        *seen.entry(row.id.as_str()).or_default() += 1;
        if !expected.contains(&row.id.as_str()) {
            problems.push(format!("{}: not an id of this table", row.id));
        }
        if !STATUSES.contains(&row.status.as_str()) {
            problems.push(format!("{}: unknown status {:?}", row.id, row.status));
        }
        if row.reference.is_empty() {
            problems.push(format!("{}: no test or reason", row.id));
        }
        if row.status == "done" || row.status == "partial" {
            let names = test_names(&row.reference);
            if names.is_empty() {
                problems.push(format!("{}: {} but names no test", row.id, row.status));
            }
            for (path, function) in names {
                let file = root.join(format!("{path}.rs"));
                let text = fs::read_to_string(&file).unwrap_or_default();
                if !text.contains(&format!("fn {function}(")) {
                    problems.push(format!("{}: no `fn {function}(` in {}", row.id, file.display()));
                }
            }
        }
    }
    for &id in expected {
        match seen.get(id) {
            None => problems.push(format!("{id}: missing")),
            Some(1) => {}
            Some(n) => problems.push(format!("{id}: listed {n} times")),
        }
    }
    problems
}

#[test]
fn conformance_matrix_lists_every_appendix_b_id_with_proof() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let markdown = fs::read_to_string(root.join("docs/conformance.md")).unwrap();
    assert_eq!(APPENDIX_B_IDS.len(), 119);
    let found = problems(&markdown, root);
    assert!(found.is_empty(), "docs/conformance.md:\n{}", found.join("\n"));
}

#[test]
fn rfc_7323_table_lists_its_requirements_with_proof() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let markdown = fs::read_to_string(root.join("docs/conformance.md")).unwrap();
    let found = rfc7323_problems(&markdown, root);
    assert!(found.is_empty(), "docs/conformance.md, RFC 7323 table:\n{}", found.join("\n"));
}

/// The SACK tables (RFC 2018, RFC 2883, RFC 6675, RFC 8985), each checked on its own.
#[test]
fn sack_tables_list_their_requirements_with_proof() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let markdown = fs::read_to_string(root.join("docs/conformance.md")).unwrap();
    let mut found = Vec::new();
    for (prefix, rfc) in RFC_TABLES {
        found.extend(table_problems(&markdown, root, prefix, rfc));
    }
    assert!(found.is_empty(), "docs/conformance.md:\n{}", found.join("\n"));
}

/// The congestion-control tables (RFC 9438, RFC 9406), each checked on its own.
#[test]
fn congestion_tables_list_their_requirements_with_proof() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let markdown = fs::read_to_string(root.join("docs/conformance.md")).unwrap();
    let mut found = Vec::new();
    for (prefix, rfc) in CONGESTION_TABLES {
        found.extend(table_problems(&markdown, root, prefix, rfc));
    }
    assert!(found.is_empty(), "docs/conformance.md:\n{}", found.join("\n"));
}

#[test]
fn the_table_checker_rejects_gaps_across_tables_and_names_of_missing_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let table = "| RFC8985-1 | 4 | a | done | `tests/sack::no_such_test_anywhere` |\n\
                 | RFC2018-1 | 2 | b | done | `tests/sack::both_syns_with_sack_permitted_turn_sack_on_rfc_2018_2` |\n\
                 | RFC8985-3 | 6.2 | c | deviation | reason |";
    let found = table_problems(table, root, "RFC8985-", "RFC 8985");
    assert!(found.iter().any(|p| p.contains("no `fn no_such_test_anywhere(`")), "{found:?}");
    assert!(found.iter().any(|p| p.contains("RFC8985-3: not an id of this table")), "{found:?}");
    assert!(found.iter().any(|p| p.contains("RFC8985-2: missing")), "{found:?}");
    assert!(table_problems(table, root, "RFC2018-", "RFC 2018").is_empty());
    assert!(
        table_problems(table, root, "RFC6675-", "RFC 6675")
            .iter()
            .any(|p| p == "no RFC 6675 table")
    );
}

#[test]
fn the_rfc_7323_checker_rejects_gaps_missing_tests_and_unknown_statuses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let table = "| RFC7323-1 | 3.2 | a | done | `tests/timestamps::no_such_test_anywhere` |\n\
                 | RFC7323-3 | 3.2 | b | maybe | reason |\n\
                 | RFC7323-3 | 3.2 | b | done | `tests/timestamps::abort_rst_carries_the_timestamps_option_rfc_7323_3_2` |";
    let found = rfc7323_problems(table, root);
    assert!(found.iter().any(|p| p.contains("no `fn no_such_test_anywhere(`")), "{found:?}");
    assert!(found.iter().any(|p| p.contains("unknown status")), "{found:?}");
    assert!(found.iter().any(|p| p.contains("RFC7323-2: missing")), "{found:?}");
    assert!(found.iter().any(|p| p.contains("RFC7323-3: listed 2 times")), "{found:?}");
    assert!(rfc7323_problems("", root).iter().any(|p| p.contains("no RFC 7323 table")));
}

#[test]
fn the_checker_rejects_a_missing_test_name() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let table = "| MUST-7 | 3.1 | cope | done | `tests/wire::no_such_test_anywhere` |\n\
                 | MUST-6 | 3.1 | skip | sometimes | reason |\n\
                 | MUST-6 | 3.1 | skip | done | no backticks |";
    let found = problems(table, root);
    assert!(found.iter().any(|p| p.contains("no `fn no_such_test_anywhere(`")), "{found:?}");
    assert!(found.iter().any(|p| p.contains("unknown status")), "{found:?}");
    assert!(found.iter().any(|p| p.contains("names no test")), "{found:?}");
    assert!(found.iter().any(|p| p.contains("MUST-6: listed 2 times")), "{found:?}");
    assert!(found.iter().any(|p| p.contains("MUST-1: missing")), "{found:?}");
}
