-- One row per runner and commit: its attempts and the median suite wall time over them.
select
    runner,
    sha,
    min(started_at) as first_started_at,
    count(*) as attempts,
    max(attempt) as last_attempt,
    median(wall_s) as median_wall_s,
    bool_or(exit_code = 0) as passed_eventually
from {{ ref('test_runs') }}
group by runner, sha
