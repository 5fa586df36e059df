"""Dagster asset, sensor and check definitions; thin glue over the pure functions in ragtune/."""
