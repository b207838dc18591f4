//! File paths as the rules see them: normalisation (`~`, `.`, `..`, repeated separators) and
//! matching against globs and the agent's declared workspace.
