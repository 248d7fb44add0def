"""Python that the workflow's rules run; every module is importable and unit-tested."""
