"""ThinkEdit-style training data from recorded trajectories: filter, truncate, unroll, balance, split."""
