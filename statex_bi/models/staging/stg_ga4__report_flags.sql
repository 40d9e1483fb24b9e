-- One row per GA4 report and property day read: whether the response that read it withheld rows for
-- privacy (subjectToThresholding: users and sessions are then lower bounds) or rolled rows into an
-- "(other)" row (dataLossFromOtherRow).
select
    cast(report as string) as report,
    cast(date as date) as date,
    cast(subject_to_thresholding as boolean) as subject_to_thresholding,
    cast(data_loss_from_other_row as boolean) as data_loss_from_other_row,
    cast(checked_at as timestamp) as checked_at
from {{ source('ga4', 'report_flags') }}
