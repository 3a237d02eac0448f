//! Progress of long work (an environment being planned, a stack being diagnosed), as the
//! engine and doctor report it. The terminal's implementation lives in `cli::output`; this
//! is the seam, so that the core never draws anything itself.

/// Where units of work report their progress.
pub trait Reporter: Send + Sync {
    /// A unit of work named `name` starts; its progress ends with `finish` (or when dropped).
    fn task(&self, name: &str) -> Box<dyn Task>;

    /// Something worth seeing while it happens even where progress bars are hidden (a run
    /// waiting for another run's lock, say); hidden by `-q`.
    fn message(&self, text: &str);
}

/// One unit of work in progress.
pub trait Task: Send + Sync {
    fn step(&self, message: &str);
    fn finish(&self);
}

/// Reports nothing: for tests, and for runs whose progress is hidden.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Reporter for Silent {
    fn task(&self, _name: &str) -> Box<dyn Task> {
        Box::new(Silent)
    }

    fn message(&self, _text: &str) {}
}

impl Task for Silent {
    fn step(&self, _message: &str) {}
    fn finish(&self) {}
}
