-- R2 usage per UTC day, bucket and storage class: the day's peak stored bytes (payload + metadata)
-- and the billable operations by class (401/403 answers excluded), bytes served by GetObject.
with peaks as (

    select day, bucket_name, storage_class, max(stored_bytes) as peak_bytes
    from {{ ref('stg_cloudflare__r2_storage') }}
    group by day, bucket_name, storage_class

),

operations as (

    select
        day,
        bucket_name,
        storage_class,
        sum(case when operation_class = 'class_a' and not is_auth_failure then requests else 0 end) as class_a,
        sum(case when operation_class = 'class_b' and not is_auth_failure then requests else 0 end) as class_b,
        sum(case when operation_class = 'free' then requests else 0 end) as free_operations,
        sum(case when operation_class = 'unlisted' then requests else 0 end) as unlisted_operations,
        sum(case when is_auth_failure then requests else 0 end) as auth_failures,
        sum(case when action_type = 'GetObject' then response_bytes else 0 end) as egress_bytes
    from {{ ref('stg_cloudflare__r2_operations') }}
    group by day, bucket_name, storage_class

)

select
    coalesce(p.day, o.day) as day,
    coalesce(p.bucket_name, o.bucket_name) as bucket_name,
    coalesce(p.storage_class, o.storage_class) as storage_class,
    coalesce(p.peak_bytes, 0) as peak_bytes,
    cast(coalesce(o.class_a, 0) as bigint) as class_a,
    cast(coalesce(o.class_b, 0) as bigint) as class_b,
    cast(coalesce(o.free_operations, 0) as bigint) as free_operations,
    cast(coalesce(o.unlisted_operations, 0) as bigint) as unlisted_operations,
    cast(coalesce(o.auth_failures, 0) as bigint) as auth_failures,
    cast(coalesce(o.egress_bytes, 0) as bigint) as egress_bytes
from peaks as p
full outer join operations as o
    on o.day = p.day and o.bucket_name = p.bucket_name and o.storage_class = p.storage_class
