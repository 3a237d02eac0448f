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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// Records the tasks shown and finished.
    #[derive(Default)]
    struct Recorder(Arc<Mutex<Vec<String>>>);

    struct Recorded(String, Arc<Mutex<Vec<String>>>);

    impl Reporter for Recorder {
        fn task(&self, name: &str) -> Box<dyn Task> {
            Box::new(Recorded(name.to_owned(), Arc::clone(&self.0)))
        }

        fn message(&self, _text: &str) {}
    }

    impl Task for Recorded {
        fn step(&self, message: &str) {
            self.1.lock().unwrap().push(format!("{} {message}", self.0));
        }

        fn finish(&self) {
            self.1.lock().unwrap().push(format!("{} finished", self.0));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn results_keep_the_items_order_with_at_most_concurrency_at_once() {
        let reporter = Recorder::default();
        let (running, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let results = run_each(
            [3u64, 1, 2, 0],
            2,
            &reporter,
            |item| (*item != 0).then(|| (format!("item {item}"), "working")),
            |item, _task| {
                let (running, most) = (&running, &most);
                async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_secs(item)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    item * 10
                }
            },
        )
        .await;
        assert_eq!(results, vec![30, 10, 20, 0]);
        assert_eq!(most.load(Ordering::SeqCst), 2);
        let shown = reporter.0.lock().unwrap().clone();
        for item in [3, 1, 2] {
            assert!(shown.contains(&format!("item {item} working")), "{shown:?}");
            assert!(
                shown.contains(&format!("item {item} finished")),
                "{shown:?}"
            );
        }
        assert_eq!(shown.len(), 6, "item 0 is not shown: {shown:?}");
    }
}
