//! Table tests of the planner.
