//! Declared state machines (spec/state-machines.md): a state machine's transitions are a
//! table of `(from, step, to)` rows, and the machine moves only by looking its step up
//! there ([`next`]); a step a state has no row for leaves it as it is. Each table renders to
//! the Markdown table and Mermaid diagram `spec/state-machines.md` shows (tests only), and a
//! test per table checks that the spec shows exactly that.

/// The state after `step` from `from`, by `table`; `None` if the table has no such row.
pub(crate) fn next<P: Copy + PartialEq, S: Copy + PartialEq>(
    table: &[(P, S, P)],
    from: P,
    step: S,
) -> Option<P> {
    table
        .iter()
        .find(|&&(f, s, _)| f == from && s == step)
        .map(|&(_, _, to)| to)
}

#[cfg(test)]
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

#[cfg(test)]
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
