"""What is searched: the space, the plan of a phase (searched, fixed, pinned, screened), the
study and its sampler, warm-start points and the parameters' importances."""
