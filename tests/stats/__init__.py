"""Tests of immunosep.stats (a package so that module names cannot clash with other test folders)."""
