//! The store's identifiers: revisions and leases. The data types and the errors both name
//! them, so they live apart from both.

/// A global store revision. Revision 0 means "before any write".
pub type Revision = i64;
/// The id of a lease granted by [`crate::Store::grant_lease`].
pub type LeaseId = i64;
