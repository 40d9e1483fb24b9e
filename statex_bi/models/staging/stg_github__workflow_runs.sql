-- One row per GitHub Actions workflow run attempt, renamed and typed.
select
    cast(run_id as bigint) as run_id,
    cast(run_attempt as bigint) as run_attempt,
    cast(workflow_name as string) as workflow_name,
    cast(event as string) as event,
    cast(head_sha as string) as head_sha,
    cast(head_branch as string) as head_branch,
    cast(conclusion as string) as conclusion,
    cast(run_started_at as timestamp) as run_started_at,
    cast(updated_at as timestamp) as updated_at
from {{ source('github', 'workflow_runs') }}
