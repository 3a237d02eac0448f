//! Progress of long work (an environment being planned, a stack being diagnosed), as the
//! engine and doctor report it, and the runner that does such work a few at a time. The
//! terminal's implementation lives in `cli::output`; this is the seam, so that the core never
//! draws anything itself.

use std::future::Future;
use std::sync::Arc;

use futures::stream::{self, StreamExt};

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

/// Runs `work` on each of `items`, at most `concurrency` at once (at least one), and returns
/// the results in the items' order. An item `label` names is shown as a task, at the step
/// `label` gives, from when its work starts until it ends; the work may report further steps
/// on it. An item `label` names `None` is not shown.
pub async fn run_each<I, T, Work>(
    items: impl IntoIterator<Item = I>,
    concurrency: usize,
    reporter: &dyn Reporter,
    label: impl Fn(&I) -> Option<(String, &'static str)>,
    work: impl Fn(I, Arc<dyn Task>) -> Work,
) -> Vec<T>
where
    Work: Future<Output = T>,
{
    stream::iter(items)
        .map(|item| {
            let task: Arc<dyn Task> = match label(&item) {
                Some((name, step)) => {
                    let task: Arc<dyn Task> = Arc::from(reporter.task(&name));
                    task.step(step);
                    task
                }
                None => Arc::new(Silent),
            };
            let running = work(item, Arc::clone(&task));
            async move {
                let result = running.await;
                task.finish();
                result
            }
        })
        .buffered(concurrency.max(1))
        .collect()
        .await
}
