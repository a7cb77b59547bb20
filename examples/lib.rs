//! A home for the runnable examples; see `quickstart/`.
