"""The public tabular suite (issue 20): tables, contenders, runner and report; see README.md."""
