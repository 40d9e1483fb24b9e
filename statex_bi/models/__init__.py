"""The dbt project: staging (views over the raw_<source> tables), core (views) and marts (tables).

dbt_project.yml, profiles.yml, macros/ and the model folders are this package's data; `project` runs
`dbt build` on them in-process.
"""
