"""SQL models: staging (views over raw tables), core and marts. See models/build.py."""
