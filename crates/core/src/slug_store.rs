//! Slugs kept in the S3-compatible slug store as well (`slipway server --slug-store`): each
//! built or uploaded slug is put there under its SHA-256 before any release uses it, so an
//! agent configured with the same store (`slipway agent --slug-store`) never finds a release
//! whose slug is not there yet. Without a slug store nothing happens here and agents fetch
//! slugs from the control plane.

use std::path::Path;

use crate::error::CoreError;
use crate::platform::Platform;

impl Platform {
    /// Puts the slug at `path`, whose Platform API checksum is `checksum` (`SHA256:<hex>`), in
    /// the slug store, if there is one. A failure fails the build or upload: a release whose
    /// slug agents cannot fetch would only crash on every host.
    pub(crate) async fn keep_in_slug_store(
        &self,
        checksum: &str,
        path: &Path,
    ) -> Result<(), CoreError> {
        let Some(store) = &self.config().slug_store else {
            return Ok(());
        };
        let digest = checksum.strip_prefix("SHA256:").unwrap_or(checksum);
        store.put_file(digest, path).await?;
        Ok(())
    }
}
