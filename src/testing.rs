//! Helpers shared by the unit tests of several modules.

/// Panics unless one of `notes` contains every one of `parts`, listing the notes.
#[track_caller]
pub(crate) fn assert_noted(notes: &[String], parts: &[&str]) {
    assert!(
        notes
            .iter()
            .any(|note| parts.iter().all(|part| note.contains(part))),
        "no note contains all of {parts:?}; the notes: {notes:#?}"
    );
}

/// Panics unless `text` contains every one of `parts`, showing the text.
#[track_caller]
pub(crate) fn assert_mentions(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "`{part}` is not in: {text}");
    }
}
