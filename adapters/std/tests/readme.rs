//! README.md shows the adapters' examples verbatim; this keeps them from drifting apart.

#[test]
fn the_readme_shows_the_adapter_examples_as_they_are() {
    let readme = include_str!("../../../README.md");
    for (path, text) in [
        (
            "adapters/std/examples/relay.rs",
            include_str!("../examples/relay.rs"),
        ),
        (
            "adapters/tokio/examples/echo.rs",
            include_str!("../../tokio/examples/echo.rs"),
        ),
    ] {
        assert!(readme.contains(text), "README.md does not show {path} as it is");
    }
}
