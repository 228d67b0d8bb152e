//! The declared state machines as `spec/state-machines.md` shows them (tests only): each
//! transition table in the code renders to a Markdown table and a Mermaid diagram, and a
//! test per table checks that the spec shows exactly that.

/// A transition table as `spec/state-machines.md` shows it: a Markdown table and a Mermaid
/// diagram entered at `initial` and left from each of `finals`.
pub(crate) fn table_section<P: core::fmt::Debug, S: core::fmt::Debug>(
    rows: &[(P, S, P)],
    initial: &str,
    finals: &[&str],
) -> alloc::string::String {
    use core::fmt::Write as _;
    let mut out = alloc::string::String::from("| from | step | to |\n| --- | --- | --- |\n");
    for (from, step, to) in rows {
        let _ = writeln!(out, "| {from:?} | {step:?} | {to:?} |");
    }
    let _ = write!(out, "\n```mermaid\nstateDiagram-v2\n    [*] --> {initial}\n");
    for (from, step, to) in rows {
        let _ = writeln!(out, "    {from:?} --> {to:?}: {step:?}");
    }
    for f in finals {
        let _ = writeln!(out, "    {f} --> [*]");
    }
    out.push_str("```\n");
    out
}

/// `spec/state-machines.md` shows `section` between the markers named `name` (read at
/// compile time: the core touches no file); on a difference the message holds the section
/// to paste in.
pub(crate) fn assert_spec_shows(name: &str, section: &str) {
    let text = include_str!("../../spec/state-machines.md");
    let begin = alloc::format!("<!-- {name}: generated -->\n");
    let end = alloc::format!("<!-- {name}: end -->");
    let shown = text
        .split_once(begin.as_str())
        .and_then(|(_, rest)| rest.split_once(end.as_str()))
        .map(|(shown, _)| shown);
    assert_eq!(
        shown,
        Some(section),
        "spec/state-machines.md is stale; its {name} section should be:\n{section}"
    );
}
