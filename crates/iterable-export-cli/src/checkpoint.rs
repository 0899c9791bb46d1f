//! Checkpoints: the state file every data type of a run shares, saved with group commit.

use std::path::PathBuf;
use std::sync::Arc;

use iterable_export::Error;

use crate::state::{Entry, State};

/// The state file shared by every data type of a run.
pub(crate) struct Checkpoints {
    pub(crate) path: PathBuf,
    /// The state and the number of updates made to it.
    /// A tokio mutex: a data type that commits while a save holds it waits without blocking
    /// the runtime thread (and every other download with it).
    pub(crate) state: tokio::sync::Mutex<(State, u64)>,
    /// Held while saving; holds the number of updates the file on disk reflects.
    pub(crate) saved: tokio::sync::Mutex<u64>,
}

/// One data type's view of the shared state file.
pub(crate) struct Checkpoint {
    pub(crate) shared: Arc<Checkpoints>,
    pub(crate) key: String,
}

impl Checkpoint {
    /// Updates this data type's entry and waits until the state file on disk holds the update.
    /// Saves run on a blocking thread (their `fsync`s must not stall the runtime), one at a
    /// time, and a save covers every update made before it started: data types that commit
    /// while another one saves share the next save (group commit) instead of queueing one
    /// `fsync` each.
    pub(crate) async fn update(&self, update: impl FnOnce(&mut Entry)) -> iterable_export::Result<()> {
        let version = {
            let mut guard = self.shared.state.lock().await;
            if let Some(entry) = guard.0.exports.get_mut(&self.key) {
                update(entry);
            }
            guard.1 += 1;
            guard.1
        };
        let mut saved = self.shared.saved.lock().await;
        if *saved >= version {
            return Ok(());
        }
        let shared = self.shared.clone();
        let save = move || -> iterable_export::Result<u64> {
            let guard = shared.state.blocking_lock();
            guard.0.save(&shared.path)?;
            Ok(guard.1)
        };
        *saved = tokio::task::spawn_blocking(save).await.map_err(|err| Error::Io {
            context: "saving the state file failed".into(),
            source: std::io::Error::other(err.to_string()),
        })??;
        Ok(())
    }
}
