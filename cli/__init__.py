"""The `chiso766` command line: the imperative shell around the pure core."""
