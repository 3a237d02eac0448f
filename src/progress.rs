//! Progress on a terminal: one spinner line per environment on stderr. Hidden when stderr is
//! not a terminal, with `--no-progress`, `-q`, or `-v` (it would interleave with the logs).

use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, Clone)]
pub struct Progress {
    multi: MultiProgress,
}

impl Progress {
    pub fn new(enabled: bool) -> Progress {
        let target = if enabled {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Progress {
            multi: MultiProgress::with_draw_target(target),
        }
    }

    pub fn hidden() -> Progress {
        Progress::new(false)
    }

    pub fn environment(&self, name: &str) -> EnvProgress {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix:.bold} {msg}")
                .expect("static template"),
        );
        bar.set_prefix(name.to_owned());
        bar.enable_steady_tick(Duration::from_millis(100));
        EnvProgress { bar }
    }
}

#[derive(Debug, Clone)]
pub struct EnvProgress {
    bar: ProgressBar,
}

impl EnvProgress {
    pub fn step(&self, message: &str) {
        self.bar.set_message(message.to_owned());
    }

    /// Removes the line; results are printed by the caller.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
